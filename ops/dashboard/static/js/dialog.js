// Modal dialogs: a preview that must be confirmed, and a form whose fields are read on Confirm.
import { h, uid } from "./dom.js";

// Resolves with the form's values on Confirm, null on Cancel or Escape.
// `ready(form)` may say whether Confirm is allowed yet (checked on every input).
export function ask(title, body, { fields = [], confirm = "Confirm", ready } = {}) {
  return new Promise((resolve) => {
    const titleId = uid("d");
    const confirmButton = h("button", { type: "submit", class: "primary", value: "confirm" }, confirm);
    const cancelButton = h("button", { type: "button", value: "cancel" }, "Cancel");
    const form = h("form", { method: "dialog" }, h("h2", { id: titleId }, title), body, fields,
                   h("div", { class: "actions" }, confirmButton, cancelButton));
    const dialog = h("dialog", { "aria-labelledby": titleId }, form);
    const check = () => { confirmButton.disabled = ready ? !ready(form) : false; };
    form.addEventListener("input", check);
    check();
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancelButton.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); finish(null); });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (confirmButton.disabled) return;
      finish(Object.fromEntries(new FormData(form).entries()));
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
