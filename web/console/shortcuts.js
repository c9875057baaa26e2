// Keyboard shortcuts: j / k next and previous conversation, r reply, n note, e resolve,
// / search, ? this list. Ignored while typing in a field.

import { h, fill } from "./dom.js";
import { t } from "./i18n.js";

const KEYS = [
  ["j", "keys.next"],
  ["k", "keys.previous"],
  ["r", "keys.reply"],
  ["n", "keys.note"],
  ["e", "keys.resolve"],
  ["/", "keys.search"],
  ["?", "keys.help"],
];

export class Shortcuts {
  constructor(app) {
    this.app = app;
    this.dialog = h("dialog", { class: "shortcuts", "aria-labelledby": "shortcuts-title" });
    document.body.append(this.dialog);
    document.addEventListener("keydown", (event) => this.onKey(event));
  }

  onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest?.("input, textarea, select, [contenteditable]")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const app = this.app;
    const actions = {
      j: () => app.inbox.move(1),
      k: () => app.inbox.move(-1),
      r: () => app.conversation.data && app.conversation.setMode("reply"),
      n: () => app.conversation.data && app.conversation.setMode("note"),
      e: () => app.conversation.data && app.conversation.setStatus("resolved"),
      "/": () => document.getElementById("search-box")?.focus(),
      "?": () => this.show(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  }

  show() {
    fill(
      this.dialog,
      h("h2", { id: "shortcuts-title" }, t("keys.title")),
      h(
        "dl",
        {},
        KEYS.map(([key, label]) => [h("dt", {}, h("kbd", {}, key)), h("dd", {}, t(label))]),
      ),
      h("form", { method: "dialog" }, h("button", { type: "submit" }, t("keys.close"))),
    );
    this.dialog.showModal();
  }
}
