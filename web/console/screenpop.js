// Screen pop: when a call rings at this agent's extension, the caller's contact and timeline
// open at once under a banner; an unknown caller gets a form to create the contact, the number
// already filled in.

import * as api from "./api.js";
import { h, fill } from "./dom.js";
import { t } from "./i18n.js";

export class ScreenPops {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.pop = null;
  }

  onEvent(event) {
    if (event.type !== "screen_pop") return;
    this.pop = event.pop;
    this.render();
    if (this.pop.contact) {
      this.app.openContact(this.pop.contact.id);
      const open = this.pop.open_conversations[0];
      if (open) this.app.openConversation(open.id);
    }
  }

  dismiss() {
    this.pop = null;
    this.render();
  }

  render() {
    if (!this.pop) {
      fill(this.root);
      return;
    }
    const p = this.pop;
    const dismiss = h("button", { type: "button", onclick: () => this.dismiss() }, t("pop.dismiss"));
    if (p.contact) {
      fill(
        this.root,
        h(
          "div",
          { class: "pop", role: "alert", dataset: { call: p.call_id } },
          h("strong", {}, t("pop.incoming", { number: p.number })),
          " ",
          h("span", { class: "caller" }, p.contact.name ?? ""),
          " · ",
          t("pop.open", { n: p.open_conversations.length }),
          " ",
          dismiss,
        ),
      );
      return;
    }
    const name = h("input", { id: "pop-name", autocomplete: "off" });
    const phone = h("input", { id: "pop-phone", type: "tel", value: p.number });
    const email = h("input", { id: "pop-email", type: "email" });
    fill(
      this.root,
      h(
        "form",
        {
          class: "pop unknown",
          role: "alert",
          dataset: { call: p.call_id },
          onsubmit: async (event) => {
            event.preventDefault();
            const handles = [{ kind: "phone", value: phone.value }];
            if (email.value.trim()) handles.push({ kind: "email", value: email.value.trim() });
            const contact = await api.post("/contacts", { name: name.value.trim() || null, handles });
            this.dismiss();
            this.app.openContact(contact.id);
          },
        },
        h("strong", {}, t("pop.unknown", { number: p.number })),
        h("label", { for: "pop-name" }, t("contact.name")),
        name,
        h("label", { for: "pop-phone" }, t("contact.phone")),
        phone,
        h("label", { for: "pop-email" }, t("contact.email")),
        email,
        h("button", { type: "submit", class: "primary" }, t("contact.save")),
        dismiss,
      ),
    );
  }
}
