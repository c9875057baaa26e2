// The shared inbox: every channel's open conversations in one list, longest-waiting customer
// first, with the filters agents use. Reloaded from the hub whenever an event could change it,
// so its order is always the hub's.

import * as api from "./api.js";
import { h, fill } from "./dom.js";
import { t, formatAgo, formatTime } from "./i18n.js";

const CHANNELS = ["email", "chat", "sms", "voice", "api"];
const STATUSES = ["open", "pending", "snoozed", "resolved"];

export class Inbox {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.filters = { view: "all", status: "open", channel: "", label: "", channel_account_id: "" };
    this.items = [];
    this.labels = [];
    this.accounts = [];
    this.selected = null;
    this.pending = null;
    this.loaded = false;
    this.render();
    this.loadChoices();
    // Waiting times move on by themselves.
    setInterval(() => this.renderList(), 30000);
  }

  async loadChoices() {
    [this.labels, this.accounts] = await Promise.all([api.get("/labels"), api.get("/channel-accounts")]);
    this.render();
  }

  async load() {
    this.items = await api.get(`/inbox${api.query({ ...this.filters, limit: 200 })}`);
    this.loaded = true;
    this.renderList();
  }

  onEvent(event) {
    if (["interaction_created", "interaction_updated", "conversation_changed"].includes(event.type)) {
      // Several events often arrive together; one reload answers them all.
      clearTimeout(this.pending);
      this.pending = setTimeout(() => {
        this.load();
        if (event.type === "conversation_changed") this.loadChoices();
      }, 100);
    }
  }

  select(id) {
    this.selected = id;
    this.renderList();
  }

  /** Opens the conversation `step` places from the selected one (j / k). */
  move(step) {
    if (this.items.length === 0) return;
    const at = this.items.findIndex((i) => i.id === this.selected);
    const next = this.items[Math.min(this.items.length - 1, Math.max(0, at === -1 ? 0 : at + step))];
    this.app.openConversation(next.id);
  }

  render() {
    const select = (name, label, options) => {
      const el = h(
        "select",
        {
          id: `filter-${name}`,
          onchange: () => {
            this.filters[name] = el.value;
            this.load();
          },
        },
        options.map(([value, text]) => h("option", { value, selected: this.filters[name] === value }, text)),
      );
      return h("div", { class: "filter" }, h("label", { for: `filter-${name}` }, label), el);
    };
    this.list = h("ol", { class: "conversations", "aria-labelledby": "inbox-title", "aria-live": "polite", "aria-relevant": "additions" });
    fill(
      this.root,
      h("h2", { id: "inbox-title" }, t("inbox.title")),
      h(
        "div",
        { class: "filters" },
        select("view", t("inbox.view"), [
          ["all", t("inbox.all")],
          ["mine", t("inbox.mine")],
          ["unassigned", t("inbox.unassigned")],
        ]),
        select("status", t("inbox.status"), [...STATUSES.map((s) => [s, t(`status.${s}`)]), ["any", t("inbox.anyStatus")]]),
        select("channel", t("inbox.channel"), [["", t("inbox.allChannels")], ...CHANNELS.map((c) => [c, t(`channel.${c}`)])]),
        select("channel_account_id", t("inbox.account"), [["", t("inbox.allAccounts")], ...this.accounts.map((a) => [a.id, a.name])]),
        select("label", t("inbox.label"), [["", t("inbox.allLabels")], ...this.labels.map((l) => [l, l])]),
      ),
      this.list,
    );
    this.renderList();
  }

  renderList() {
    if (!this.list) return;
    if (this.loaded && this.items.length === 0) {
      fill(this.list, h("li", { class: "empty" }, t("inbox.empty")));
      return;
    }
    fill(this.list, this.items.map((item) => this.renderItem(item)));
  }

  renderItem(item) {
    const name = item.contact_name || item.handle || t("inbox.unknown");
    return h(
      "li",
      { dataset: { conversation: item.id, channel: item.channel } },
      h(
        "a",
        {
          href: `#/conversations/${item.id}`,
          "aria-current": item.id === this.selected ? "true" : undefined,
        },
        h("span", { class: `channel channel-${item.channel}` }, t(`channel.${item.channel}`)),
        h("span", { class: "who" }, name),
        item.priority !== "normal" &&
          h("span", { class: `priority priority-${item.priority}`, title: item.priority_reason ?? "" }, t(`priority.${item.priority}`)),
        (item.segments ?? []).map((s) => h("span", { class: "segment", dataset: { segment: s.id } }, s.name)),
        item.waiting_since && h("span", { class: "waiting" }, t("inbox.waiting", { time: formatAgo(item.waiting_since) })),
        slaBadge(item),
        h("span", { class: "preview" }, item.subject ? `${item.subject} — ` : "", item.preview ?? ""),
        h(
          "span",
          { class: "meta" },
          h("span", { class: "assignee" }, item.assignee_name ?? t("inbox.nobody")),
          " · ",
          h("span", { class: "account" }, item.account_name),
          item.labels.map((l) => h("span", { class: "label" }, l)),
        ),
      ),
    );
  }
}

/** The next SLA deadline of a conversation, or that it was missed. */
export function slaBadge(c) {
  if (c.sla_breached) return h("span", { class: "sla breached" }, t("sla.breached"));
  if (!c.sla_due_at) return null;
  return h("span", { class: "sla" }, t("sla.due", { target: t(`sla.${c.sla_target}`), time: formatTime(c.sla_due_at) }));
}
