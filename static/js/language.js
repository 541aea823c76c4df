// The language switch keeps the customer's work. Before the switch posts, what is typed in
// forms marked data-keep-on-language is kept in sessionStorage and put back on the page that
// loads next (files cannot be kept: the browser will not let a page set them). A lookup result
// (data-replay-on-language) is looked up again in the new language: its fields go with the
// switch, and the server hands them back to the lookup (a 307 keeps the POST).
"use strict";

(() => {
  const KEY = "portal:kept-form";
  const skip = (el) => !el.name || el.type === "file" || el.type === "hidden" ||
    el.type === "submit" || el.name === "csrf_token";

  function restore() {
    let kept = null;
    try { kept = JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (error) { kept = null; }
    sessionStorage.removeItem(KEY);
    if (!kept || kept.path !== window.location.pathname) return;
    for (const form of document.querySelectorAll("form[data-keep-on-language]")) {
      for (const el of form.elements) {
        if (skip(el) || !(el.name in kept.fields)) continue;
        const value = kept.fields[el.name];
        if (el.type === "radio" || el.type === "checkbox") el.checked = el.value === value;
        else if (!el.value) el.value = value;
      }
      form.querySelectorAll("input, textarea").forEach((el) => el.dispatchEvent(new Event("input")));
    }
  }

  function keep(switcher) {
    const fields = {};
    for (const form of document.querySelectorAll("form[data-keep-on-language]")) {
      for (const el of form.elements) {
        if (skip(el) || ((el.type === "radio" || el.type === "checkbox") && !el.checked)) continue;
        if (el.value) fields[el.name] = el.value;
      }
    }
    const replay = document.querySelector("form[data-replay-on-language]");
    if (replay) {
      for (const el of replay.elements) {
        if (skip(el) || !el.value) continue;
        const copy = document.createElement("input");
        copy.type = "hidden"; copy.name = el.name; copy.value = el.value;
        switcher.appendChild(copy);
      }
      switcher.querySelector("[name=next]").value = replay.getAttribute("action");
      const flag = document.createElement("input");
      flag.type = "hidden"; flag.name = "replay"; flag.value = "1";
      switcher.appendChild(flag);
    }
    const next = switcher.querySelector("[name=next]").value.split("?")[0];
    sessionStorage.setItem(KEY, JSON.stringify({ path: next, fields }));
  }

  document.addEventListener("DOMContentLoaded", () => {
    restore();
    for (const switcher of document.querySelectorAll("form.lang-switch")) {
      switcher.addEventListener("submit", () => keep(switcher));
    }
  });
})();
