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

// The evidence viewer: pick a file, zoom and rotate it.
document.addEventListener("DOMContentLoaded", () => {
  const viewer = document.querySelector("[data-viewer]");
  if (!viewer) return;
  const image = viewer.querySelector(".viewer-image");
  if (!image) return;
  let scale = 1;
  let angle = 0;
  const apply = () => { image.style.transform = `rotate(${angle}deg) scale(${scale})`; };
  viewer.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.zoom) scale = Math.min(6, Math.max(0.3, scale * Number(button.dataset.zoom)));
    if (button.dataset.rotate) angle = (angle + Number(button.dataset.rotate)) % 360;
    if ("reset" in button.dataset) { scale = 1; angle = 0; }
    if (button.dataset.src) { image.src = button.dataset.src; scale = 1; angle = 0; }
    apply();
  });
});
