// The contact beside the conversation: who they are (every address they reached us from),
// merge and undo, and their whole cross-channel timeline, newest first, loaded page by page
// as the agent scrolls.

import * as api from "./api.js";
import { h, fill } from "./dom.js";
import { t, formatTime } from "./i18n.js";

const PAGE = 30;
const CHANNELS = ["email", "chat", "sms", "voice", "api"];

export class ContactPanel {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.id = null;
    this.contact = null;
    this.items = [];
    this.cursor = null;
    this.done = false;
    this.channel = "";
    this.merges = [];
    this.loading = false;
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.more();
    });
  }

  async open(id) {
    if (id === this.id && this.contact) return;
    this.id = id;
    this.channel = "";
    await this.reload();
  }

  async reload() {
    if (!this.id) return;
    const id = this.id;
    const [contact, merges] = await Promise.all([api.get(`/contacts/${id}`), api.get(`/contacts/${id}/merges`)]);
    this.definitions ??= await api.get("/attribute-definitions");
    if (id !== this.id) return;
    // A contact merged into another shows the one it lives on in now.
    if (contact.merged_into) {
      this.id = contact.merged_into;
      return this.reload();
    }
    this.contact = contact;
    this.merges = merges;
    this.items = [];
    this.cursor = null;
    this.done = false;
    this.render();
    await this.more();
  }

  async more() {
    if (!this.id || this.done || this.loading) return;
    this.loading = true;
    try {
      const page = await api.get(`/contacts/${this.id}/timeline${api.query({ limit: PAGE, cursor: this.cursor, channel: this.channel })}`);
      this.items.push(...page.items);
      this.cursor = page.next_cursor;
      this.done = !page.next_cursor;
    } finally {
      this.loading = false;
    }
    this.renderTimeline();
  }

  onEvent(event) {
    if (!this.contact) return;
    if (event.type === "interaction_created" && event.interaction.contact_id === this.id) {
      const i = event.interaction;
      if ((!this.channel || this.channel === i.channel) && !this.items.some((x) => x.id === i.id)) {
        this.items.unshift(i);
        this.items.sort((a, b) => (a.occurred_at < b.occurred_at ? 1 : a.occurred_at > b.occurred_at ? -1 : 0));
        this.renderTimeline();
      }
    }
    if (event.type === "interaction_updated" && event.interaction.contact_id === this.id) {
      const at = this.items.findIndex((x) => x.id === event.interaction.id);
      if (at !== -1) {
        this.items[at] = event.interaction;
        this.renderTimeline();
      }
    }
  }

  render() {
    if (!this.contact) {
      fill(this.root, h("h2", { id: "contact-title" }, t("contact.title")), h("p", { class: "placeholder" }, t("contact.none")));
      return;
    }
    const c = this.contact;
    const channel = h(
      "select",
      {
        id: "timeline-channel",
        onchange: () => {
          this.channel = channel.value;
          this.items = [];
          this.cursor = null;
          this.done = false;
          this.more();
        },
      },
      h("option", { value: "" }, t("contact.allChannels")),
      CHANNELS.map((ch) => h("option", { value: ch, selected: this.channel === ch }, t(`channel.${ch}`))),
    );
    const mergeId = h("input", { id: "merge-id", autocomplete: "off" });
    this.timeline = h("ol", { class: "timeline", "aria-labelledby": "timeline-title" });
    this.sentinel = h("div", { class: "sentinel" });
    fill(
      this.root,
      h("h2", { id: "contact-title", dataset: { contact: c.id } }, c.name || t("contact.unnamed")),
      (c.segments ?? []).length > 0 && [
        h("h3", {}, t("contact.segments")),
        h("ul", { class: "segments" }, c.segments.map((s) => h("li", { class: "segment", dataset: { segment: s.id } }, s.name))),
      ],
      h("h3", {}, t("contact.handles")),
      h(
        "ul",
        { class: "handles" },
        c.handles.map((x) => h("li", { dataset: { kind: x.kind } }, h("span", { class: "handle-kind" }, x.kind), " ", x.value)),
      ),
      Object.keys(c.attributes ?? {}).length > 0 && [
        h("h3", {}, t("contact.attributes")),
        h(
          "dl",
          { class: "attributes" },
          Object.entries(c.attributes).map(([key, value]) => [
            h("dt", {}, this.definitions?.find((d) => d.key === key)?.label ?? key),
            h("dd", { dataset: { attribute: key } }, typeof value === "boolean" ? (value ? "✓" : "✗") : String(value)),
          ]),
        ),
      ],
      this.merges.some((m) => !m.unmerged_at) &&
        h(
          "ul",
          { class: "merges" },
          this.merges
            .filter((m) => !m.unmerged_at)
            .map((m) => h("li", {}, h("button", { type: "button", onclick: () => this.unmerge(m.id) }, t("contact.unmerge")), " ", m.source_contact_id.slice(0, 8))),
        ),
      h(
        "details",
        { class: "merge" },
        h("summary", {}, t("contact.merge")),
        h(
          "form",
          {
            onsubmit: async (event) => {
              event.preventDefault();
              await api.post("/contacts/merge", { source_id: mergeId.value.trim(), target_id: c.id });
              this.contact = null;
              this.reload();
            },
          },
          h("label", { for: "merge-id" }, t("contact.mergeId")),
          mergeId,
          h("button", { type: "submit" }, t("contact.mergeSubmit")),
        ),
      ),
      h("div", { class: "timeline-head" }, h("h3", { id: "timeline-title" }, t("contact.timeline")), h("label", { for: "timeline-channel", class: "visually-hidden" }, t("inbox.channel")), channel),
      this.timeline,
      this.sentinel,
    );
    this.observer.disconnect();
    this.observer.observe(this.sentinel);
    this.renderTimeline();
  }

  renderTimeline() {
    if (!this.timeline) return;
    fill(
      this.timeline,
      this.items.map((i) =>
        h(
          "li",
          { dataset: { id: i.id, channel: i.channel, direction: i.direction } },
          h(
            "a",
            { href: `#/conversations/${i.conversation_id}` },
            h("span", { class: `channel channel-${i.channel}` }, t(`channel.${i.channel}`)),
            h("time", { datetime: i.occurred_at }, formatTime(i.occurred_at)),
            h("span", { class: "summary" }, summary(i)),
          ),
        ),
      ),
    );
    fill(
      this.sentinel,
      this.done
        ? h("p", { class: "end" }, t("contact.end"))
        : h("button", { type: "button", onclick: () => this.more() }, t("contact.more")),
    );
  }

  async unmerge(id) {
    await api.post(`/merges/${id}/unmerge`, {});
    this.contact = null;
    this.reload();
  }
}

function summary(i) {
  const text = (i.subject ? `${i.subject}: ` : "") + (i.text ?? "");
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}
