// Upload with a progress bar (large phone photos on slow networks), and refresh while files
// are being read. Without JavaScript the form posts normally and the page can be reloaded.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-progress]")) {
    form.addEventListener("submit", (event) => {
      if (!window.XMLHttpRequest || !window.FormData) return;
      const input = form.querySelector("input[type=file]");
      if (!input || !input.files.length) return;
      event.preventDefault();
      const bar = form.querySelector("progress");
      const button = form.querySelector("button[type=submit]");
      bar.hidden = false;
      button.disabled = true;
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
      });
      request.addEventListener("load", () => { window.location.assign(request.responseURL); });
      request.addEventListener("error", () => { button.disabled = false; form.submit(); });
      request.send(new FormData(form));
    });
  }
  const waiting = document.querySelector("[data-refresh]");
  if (waiting) {
    const seconds = Number(waiting.dataset.refresh) || 5;
    setTimeout(() => window.location.reload(), seconds * 1000);
  }
});
