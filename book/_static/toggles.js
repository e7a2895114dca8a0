// The sidebar buttons of the book.
//
// pydata-sphinx-theme 0.17 and sphinx-book-theme 1.3 each put a "primary-toggle" (and a
// "secondary-toggle") button in the page, but both themes attach their click handlers to the
// first one only (document.querySelector), which is hidden: the visible button did nothing,
// at any width. A click on any other toggle button is handed to the first one, which has the
// themes' behaviour: open the sidebar as a dialog on a narrow screen, hide or show it on a wide
// one.
document.addEventListener("DOMContentLoaded", () => {
  for (const kind of ["primary", "secondary"]) {
    const [first, ...others] = document.querySelectorAll(`.${kind}-toggle`);
    for (const button of others) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopImmediatePropagation();
        first.click();
      });
    }
  }
});
