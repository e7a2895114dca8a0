// Readable search results.
// 1. Sphinx builds each result's summary from the page's text, where math is still LaTeX source
//    waiting for MathJax ("\(\log k\)"); the search page does not load MathJax, so the summaries
//    are rewritten as plain text: delimiters dropped, common commands replaced by their symbols,
//    braces removed ("log k"). The labels of the page's download menu (".ipynb .md .pdf") and
//    its "Contents" heading, which open every page's text, are dropped too.
// 2. Sphinx matches word stems: "positional" and "positive" share the stem "posit", so a search
//    for one lists pages that only have the other. A result stays only if its title or summary
//    holds the query word itself, or the word without a common ending ("encodings" →
//    "encoding", "positional" → "position").
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
      .replace(/^([\s\S]*?)\\[)\]]/, (_, math) => plain(math))
      .replace(/(^|\s|\.\.\.)\.(?:ipynb|md|pdf)(?=\s|$)/g, "$1")
      .replace(/(^|\s|\.\.\.)Contents(?=\s|\.\.\.|$)/g, "$1")
      .replace(/\s{2,}/g, " ");
  const ENDINGS = /(?:al|s|es|ing|ed|ly)$/;
  const words = () =>
    (new URLSearchParams(window.location.search).get("q") || "")
      .toLowerCase()
      .split(/\s+/)
      .filter((w) => w.length > 2);
  const holds = (text, word) =>
    text.includes(word) || text.includes(word.replace(ENDINGS, ""));
  document.addEventListener("DOMContentLoaded", () => {
    const results = document.getElementById("search-results");
    if (!results) return;
    const query = words();
    new MutationObserver(() => {
      for (const summary of results.querySelectorAll("p.context:not([data-plain])")) {
        summary.dataset.plain = "";
        summary.textContent = clean(summary.textContent);
      }
      for (const item of results.querySelectorAll("li:not([data-checked])")) {
        if (!item.querySelector("p.context")) continue; // its summary is still loading
        item.dataset.checked = "";
        const text = item.textContent.toLowerCase();
        if (!query.every((word) => holds(text, word))) item.hidden = true;
      }
      const status = results.querySelector("p.search-summary");
      const shown = results.querySelectorAll("li:not([hidden])").length;
      const counted = status?.textContent.replace(/\d+ page(s?)/, `${shown} page$1`);
      if (counted && counted !== status.textContent) status.textContent = counted; // no loop
    }).observe(results, { childList: true, subtree: true });
  });
})();
