// The supervisors' live dashboard: the backlog per inbox, agents and their load, calls ringing
// and in progress. The hub pushes a fresh snapshot over the agent socket whenever something
// moved; nothing here polls.

import * as api from "./api.js";
import { h, fill } from "./dom.js";
import { t, formatAgo } from "./i18n.js";

export class Dashboard {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.snapshot = null;
    setInterval(() => this.app.center === this && this.render(), 30000);
  }

  async open() {
    this.snapshot = await api.get("/dashboard");
    this.render();
  }

  onEvent(event) {
    if (event.type === "dashboard") {
      this.snapshot = event.snapshot;
      if (this.app.center === this) this.render();
    }
  }

  render() {
    const s = this.snapshot;
    if (!s) {
      fill(this.root, h("h2", {}, t("dashboard.title")));
      return;
    }
    const total = (key) => s.inboxes.reduce((sum, i) => sum + i[key], 0);
    const counter = (id, label, value, tip) =>
      h("div", { class: "counter", id: `counter-${id}`, title: tip }, h("span", { class: "value" }, String(value)), h("span", { class: "name" }, label));
    const th = (key) => h("th", { scope: "col", title: t(`${key}.tip`) }, t(key));
    fill(
      this.root,
      h("h2", { id: "dashboard-title" }, t("dashboard.title")),
      h(
        "div",
        { class: "counters", role: "status", "aria-live": "polite" },
        counter("open", t("dashboard.open"), total("open"), t("dashboard.open.tip")),
        counter("waiting", t("dashboard.waiting"), total("waiting"), t("dashboard.waiting.tip")),
        counter("breached", t("dashboard.breached"), total("breached"), t("dashboard.breached.tip")),
        counter("ringing", t("dashboard.ringing"), s.calls_ringing, t("dashboard.ringing.tip")),
        counter("talking", t("dashboard.talking"), s.calls_in_progress, t("dashboard.talking.tip")),
      ),
      h(
        "table",
        { class: "grid", "aria-labelledby": "dashboard-inboxes" },
        h("caption", { id: "dashboard-inboxes" }, t("dashboard.inboxes")),
        h("thead", {}, h("tr", {}, th("dashboard.inbox"), th("dashboard.channel"), th("dashboard.open"), th("dashboard.waiting"), th("dashboard.breached"), th("dashboard.longest"))),
        h(
          "tbody",
          {},
          s.inboxes.map((i) =>
            h(
              "tr",
              { dataset: { inbox: i.channel_account_id } },
              h("th", { scope: "row" }, i.name),
              h("td", {}, t(`channel.${i.channel}`)),
              h("td", { class: "num" }, String(i.open)),
              h("td", { class: "num" }, String(i.waiting)),
              h("td", { class: `num ${i.breached ? "bad" : ""}` }, String(i.breached)),
              h("td", {}, i.longest_waiting_since ? formatAgo(i.longest_waiting_since) : "—"),
            ),
          ),
        ),
      ),
      h(
        "table",
        { class: "grid", "aria-labelledby": "dashboard-agents" },
        h("caption", { id: "dashboard-agents" }, t("dashboard.agents")),
        h("thead", {}, h("tr", {}, th("dashboard.agent"), th("dashboard.presence"), th("dashboard.assigned"))),
        h(
          "tbody",
          {},
          s.agents.map((a) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, a.name),
              h("td", {}, h("span", { class: `presence-dot ${a.presence}`, "aria-hidden": "true" }), t(`presence.${a.presence}`)),
              h("td", { class: "num" }, String(a.open_assigned)),
            ),
          ),
        ),
      ),
    );
  }
}
