// Show only the fields this kind of invoice needs, as the code and number are typed.
// Without JavaScript every field stays visible with a hint, and the server decides.
"use strict";

(() => {
  const form = document.querySelector("form[data-fields-url]");
  if (!form) return;
  const code = form.querySelector("[name=code]");
  const number = form.querySelector("[name=number]");
  const hint = form.querySelector("#kind-hint");
  const url = form.dataset.fieldsUrl;
  const optional = ["amount", "total", "check_code_last6"];
  let timer = null;
  let latest = 0;

  function show(fields, needsCode) {
    // A fully digital invoice (数电票) has no invoice code: stop asking for one.
    const codeBox = form.querySelector('[data-lookup-field="code"]');
    if (codeBox) {
      codeBox.hidden = needsCode === false && !code.value && !codeBox.querySelector(".error");
    }
    for (const name of optional) {
      const box = form.querySelector(`[data-lookup-field="${name}"]`);
      const keep = fields === null || fields.includes(name);
      // Never hide a field that holds a value or an error.
      const input = box.querySelector("input");
      box.hidden = !keep && !input.value && !box.querySelector(".error");
    }
  }

  async function update() {
    const digits = (code.value + number.value).replace(/\D/g, "");
    if (digits.length < 8) { show(null); hint.hidden = true; return; }
    const ticket = ++latest;
    const query = new URLSearchParams({ code: code.value, number: number.value });
    try {
      const response = await fetch(`${url}?${query}`, { headers: { Accept: "application/json" } });
      const answer = await response.json();
      if (ticket !== latest) return;
      if (answer.ok) {
        show(answer.fields, answer.needs_code);
        hint.textContent = `${answer.kind} · ${answer.region}`;
        hint.classList.toggle("warn", !answer.beijing);
      } else {
        show(null);
        hint.textContent = answer.message;
        hint.classList.add("warn");
      }
      hint.hidden = false;
    } catch (error) {
      show(null);
    }
  }

  for (const input of [code, number]) {
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
  }
  update();
})();
