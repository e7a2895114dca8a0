// Figures and display equations on small screens (no library: the book works offline).
//
// A figure of a cell's output is shrunk to the column; on a phone its text gets small. A tap
// (or click) on it opens it at its own size in an overlay that scrolls in both directions;
// a tap on the overlay, its close button or Escape closes it.
//
// A display equation wider than the column scrolls inside its own box; the class "scrolls" is
// set on those that do, which gives them a visible scroll bar and a shadow on the side that
// hides more (custom.css).
document.addEventListener("DOMContentLoaded", () => {
  const overlay = document.createElement("div");
  overlay.className = "figure-lightbox";
  overlay.setAttribute("role", "dialog");
  overlay.setAttribute("aria-label", "Figure at full size");
  overlay.hidden = true;
  const close = document.createElement("button");
  close.className = "figure-lightbox-close";
  close.type = "button";
  close.setAttribute("aria-label", "Close");
  close.textContent = "×";
  overlay.append(close);
  document.body.append(overlay);
  let big = null;  // the image shown, made on each opening (an empty <img> is a broken one)
  const hide = () => {
    overlay.hidden = true;
    document.body.classList.remove("lightbox-open");
    if (big) { big.remove(); big = null; }
  };
  overlay.addEventListener("click", (event) => { if (event.target !== big) hide(); });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") hide(); });

  for (const img of document.querySelectorAll(".bd-article .cell_output img")) {
    img.classList.add("zoomable");
    img.setAttribute("tabindex", "0");
    img.setAttribute("title", "Tap to see the figure at full size");
    const open = () => {
      if (big) big.remove();
      big = document.createElement("img");
      big.src = img.src;
      big.alt = img.alt;
      overlay.append(big);
      overlay.hidden = false;
      document.body.classList.add("lightbox-open");
      close.focus();
    };
    img.addEventListener("click", open);
    img.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
  }

  const markScrolling = () => {
    for (const box of document.querySelectorAll('.bd-article mjx-container[display="true"]')) {
      box.classList.toggle("scrolls", box.scrollWidth > box.clientWidth + 1);
    }
  };
  window.addEventListener("resize", markScrolling);
  // MathJax typesets after the page has loaded
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(markScrolling);
  }
  window.addEventListener("load", () => setTimeout(markScrolling, 200));
});
