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

// The evidence viewer: every page of every file in order (next / previous), zoom and rotate;
// and, while a registry refresh is on its way, a reload when its answer is stored.
document.addEventListener("DOMContentLoaded", () => {
  const viewer = document.querySelector("[data-viewer]");
  const image = viewer && viewer.querySelector("[data-image]");
  if (image) {
    const pages = Array.from(viewer.querySelectorAll("[data-page]"));
    const where = viewer.querySelector("[data-where]");
    let index = 0;
    let scale = 1;
    let angle = 0;
    const apply = () => { image.style.transform = `rotate(${angle}deg) scale(${scale})`; };
    const show = (i) => {
      if (!pages.length) return;
      index = (i + pages.length) % pages.length;
      image.src = pages[index].dataset.src;
      image.alt = pages[index].dataset.label;
      if (where) where.textContent = `${index + 1} / ${pages.length} · ${pages[index].dataset.label}`;
      scale = 1; angle = 0; apply();
    };
    viewer.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      if (button.dataset.zoom) scale = Math.min(6, Math.max(0.3, scale * Number(button.dataset.zoom)));
      if (button.dataset.rotate) angle = (angle + Number(button.dataset.rotate)) % 360;
      if ("reset" in button.dataset) { scale = 1; angle = 0; }
      if (button.dataset.step) { show(index + Number(button.dataset.step)); return; }
      if (button.dataset.src) {
        const found = pages.findIndex((p) => p.dataset.src === button.dataset.src);
        show(found >= 0 ? found : 0);
        return;
      }
      apply();
    });
    if (pages.length < 2) viewer.querySelectorAll("[data-step]").forEach((b) => { b.hidden = true; });
    if (where && pages.length) where.textContent = `1 / ${pages.length} · ${pages[0].dataset.label}`;
  }

  const registry = document.getElementById("registry-state");
  const poll = registry && registry.dataset.poll;
  if (poll) {
    const check = () => {
      fetch(poll, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : null))
        .then((state) => {
          if (state && !state.refreshing) window.location.reload();
          else window.setTimeout(check, 2000);
        })
        .catch(() => window.setTimeout(check, 5000));
    };
    window.setTimeout(check, 1500);
  }
});
