// Uploads that never dead-end. Before anything is sent, each chosen file is checked against
// the server's own limits (size from data-max-bytes, type from the file's first bytes) and a
// refusal is shown beside the control, in the page's language. Forms with data-progress send
// with a progress bar; the server answers {"redirect": url} so its messages show on the page
// that is loaded next. Without JavaScript the form posts normally and the server says the same.
"use strict";

(() => {
  const EXTENSIONS = {
    jpg: "jpeg", jpeg: "jpeg", png: "png", webp: "webp", heic: "heic", heif: "heic",
    pdf: "pdf", ofd: "zip", xml: "xml",
  };

  function kindOf(bytes) {
    const text = (start, end) => String.fromCharCode(...bytes.slice(start, end));
    if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
    if (text(0, 8) === "\x89PNG\r\n\x1a\n") return "png";
    if (text(0, 4) === "RIFF" && text(8, 12) === "WEBP") return "webp";
    if (text(4, 8) === "ftyp") return "heic";
    if (text(0, 5) === "%PDF-") return "pdf";
    if (text(0, 4) === "PK\x03\x04") return "zip";
    if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) return "xml";
    const start = text(0, 64).replace(/^\xef\xbb\xbf/, "").trimStart();
    if (start.startsWith("<")) return "xml";
    return null;
  }

  async function refusal(file, box) {
    const max = Number(box.dataset.maxBytes);
    if (file.size === 0) return box.dataset.msgEmpty;
    if (max && file.size > max) return `${file.name}: ${box.dataset.msgTooLarge}`;
    const head = new Uint8Array(await file.slice(0, 64).arrayBuffer());
    const kind = kindOf(head);
    if (!kind) return `${file.name}: ${box.dataset.msgUnsupported}`;
    const extension = (file.name.split(".").pop() || "").toLowerCase();
    const expected = EXTENSIONS[extension];
    if (file.name.includes(".") && expected && expected !== kind) {
      return `${file.name}: ${box.dataset.msgRenamed}`;
    }
    if (file.name.includes(".") && !expected) return `${file.name}: ${box.dataset.msgUnsupported}`;
    return null;
  }

  async function check(box) {
    const inputs = [...box.querySelectorAll("input[type=file]")];
    const problems = [];
    let total = 0;
    for (const input of inputs) {
      let bad = false;
      for (const file of input.files) {
        total += file.size;
        const why = await refusal(file, box);
        if (why) { problems.push(why); bad = true; }
      }
      input.setAttribute("aria-invalid", bad ? "true" : "false");
      if (bad) input.value = "";  // choose again: a refused file is never sent
    }
    const max = Number(box.dataset.maxBytes);
    if (!problems.length && max && total > max) problems.push(box.dataset.msgTogether);
    const out = box.querySelector(".upload-error");
    out.textContent = problems.join(" ");
    out.hidden = !problems.length;
    box.classList.toggle("has-error", problems.length > 0);
    return problems.length === 0;
  }

  function sendWithProgress(form) {
    const bar = form.querySelector("progress");
    const button = form.querySelector("button[type=submit]");
    if (bar) bar.hidden = false;
    if (button) button.disabled = true;
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    request.upload.addEventListener("progress", (e) => {
      if (bar && e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
    });
    request.addEventListener("load", () => {
      let target = null;
      try { target = JSON.parse(request.responseText).redirect; } catch (error) { target = null; }
      const url = new URL(target || window.location.href, window.location.href);
      if (url.pathname + url.search === window.location.pathname + window.location.search) {
        window.location.hash = url.hash;  // the same page: load it again to show its messages
        window.location.reload();
      } else {
        window.location.assign(url);
      }
    });
    request.addEventListener("error", () => { if (button) button.disabled = false; form.submit(); });
    request.send(new FormData(form));
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const box of document.querySelectorAll("[data-upload]")) {
      for (const input of box.querySelectorAll("input[type=file]")) {
        input.addEventListener("change", () => { check(box); });
      }
    }
    for (const form of document.querySelectorAll("form")) {
      const boxes = [...form.querySelectorAll("[data-upload]")];
      if (!boxes.length) continue;
      const chosen = () => boxes.some((b) => [...b.querySelectorAll("input[type=file]")].some((i) => i.files.length));
      form.addEventListener("submit", (event) => {
        if (!chosen()) return;  // nothing to check or to show progress for: a plain post
        event.preventDefault();
        Promise.all(boxes.map(check)).then((results) => {
          if (!results.every(Boolean)) { boxes[0].querySelector("input[type=file]").focus(); return; }
          if (form.hasAttribute("data-progress") && window.XMLHttpRequest && window.FormData) {
            sendWithProgress(form);
          } else {
            HTMLFormElement.prototype.submit.call(form);  // no second submit event
          }
        });
      });
    }
    const waiting = document.querySelector("[data-refresh]");
    if (waiting) {
      const seconds = Number(waiting.dataset.refresh) || 5;
      setTimeout(() => window.location.reload(), seconds * 1000);
    }
  });
})();
