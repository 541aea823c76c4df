// Keyboard shortcuts on the review page: n next case, a approve, r reject, i ask for more.
"use strict";

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  const open = (id) => {
    const box = document.getElementById(id);
    if (!box) return;
    box.open = true;
    const first = box.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
    box.scrollIntoView({ block: "start" });
    event.preventDefault();
  };
  switch (event.key) {
    case "n": {
      const next = document.getElementById("next-case");
      if (next) { window.location.href = next.href; event.preventDefault(); }
      break;
    }
    case "a": open("approve"); break;
    case "r": open("reject"); break;
    case "i": open("request-info"); break;
    default: break;
  }
});
