// Readable search results. Sphinx builds each result's summary from the page's text, where
// math is still LaTeX source waiting for MathJax ("\(\log k\)"); the search page does not load
// MathJax, so the summaries are rewritten as plain text: delimiters dropped, common commands
// replaced by their symbols, braces removed ("log k").
(() => {
  const SYMBOLS = {
    alpha: "α", beta: "β", lambda: "λ", sigma: "σ", mu: "μ", Delta: "Δ", sum: "Σ",
    sqrt: "√", cdot: "·", times: "×", mid: "|", le: "≤", ge: "≥", infty: "∞", to: "→",
    top: "ᵀ", log: "log", exp: "exp", max: "max", min: "min", softmax: "softmax",
    quad: " ", qquad: " ",
  };
  const plain = (latex) =>
    latex
      .replace(/\\frac\{([^{}]*)\}\{([^{}]*)\}/g, "$1/$2")
      .replace(/\\(?:mathrm|operatorname|text|hat|bar|tilde|mathbb|big|Big|left|right)\b/g, "")
      .replace(/\\([A-Za-z]+)/g, (match, name) => SYMBOLS[name] ?? name)
      .replace(/[{}]/g, "")
      .replace(/\\[,;! ]/g, " ");
  // A summary is cut at 240 characters, so math may open without closing (or close without
  // having opened): what follows an unmatched delimiter is math too.
  const clean = (text) =>
    text
      .replace(/\\\(([\s\S]*?)(\\\)|$)/g, (_, math) => plain(math))
      .replace(/\\\[([\s\S]*?)(\\\]|$)/g, (_, math) => plain(math))
      .replace(/\$\$([\s\S]*?)(\$\$|$)/g, (_, math) => plain(math))
      .replace(/^([\s\S]*?)\\[)\]]/, (_, math) => plain(math));
  document.addEventListener("DOMContentLoaded", () => {
    const results = document.getElementById("search-results");
    if (!results) return;
    new MutationObserver(() => {
      for (const summary of results.querySelectorAll("p.context:not([data-plain])")) {
        summary.dataset.plain = "";
        summary.textContent = clean(summary.textContent);
      }
    }).observe(results, { childList: true, subtree: true });
  });
})();
