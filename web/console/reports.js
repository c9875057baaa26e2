// Reports for a period, per channel, inbox or agent: volume, first response and resolution
// times (p50 and p90, also in business hours), SLA attainment and missed calls, as a table, a
// hand-drawn SVG chart, and a CSV download of the same figures.

import * as api from "./api.js";
import { h, fill } from "./dom.js";
import { t, formatDuration } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** The agent's own calendar day of `date`, as the date inputs show it (`YYYY-MM-DD`). Not
 * `toISOString()`, whose day is UTC's: east of UTC, after midnight local time, "today" would
 * be yesterday and the report would miss everything since midnight. */
function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export class Reports {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    const today = new Date();
    this.filters = { from: isoDay(new Date(today.getTime() - 6 * 86400000)), to: isoDay(today), group_by: "channel" };
    this.result = null;
    this.error = null;
  }

  params(format) {
    const from = new Date(`${this.filters.from}T00:00:00`);
    const to = new Date(`${this.filters.to}T00:00:00`);
    to.setDate(to.getDate() + 1);
    return api.query({ from: from.toISOString(), to: to.toISOString(), group_by: this.filters.group_by, format });
  }

  async open() {
    try {
      this.result = await api.get(`/reports/summary${this.params()}`);
      this.error = null;
    } catch (error) {
      this.result = null;
      this.error = error.message;
    }
    this.render();
  }

  render() {
    const input = (name, type, label) => {
      const el = h("input", { id: `report-${name}`, type, value: this.filters[name], onchange: () => ((this.filters[name] = el.value), this.open()) });
      return [h("label", { for: `report-${name}` }, label), el];
    };
    const group = h(
      "select",
      { id: "report-group", onchange: () => ((this.filters.group_by = group.value), this.open()) },
      ["channel", "inbox", "agent"].map((g) => h("option", { value: g, selected: this.filters.group_by === g }, t(`reports.by.${g}`))),
    );
    const rows = this.result?.rows ?? [];
    const secs = (v) => (v == null ? "—" : formatDuration(v));
    const th = (key) => h("th", { scope: "col", title: t(`${key}.tip`) }, t(key));
    fill(
      this.root,
      h("h2", { id: "reports-title" }, t("reports.title")),
      h(
        "div",
        { class: "filters" },
        input("from", "date", t("search.from")),
        input("to", "date", t("search.to")),
        h("label", { for: "report-group" }, t("reports.groupBy")),
        group,
        h("a", { class: "button", id: "report-csv", href: `/api/v1/reports/summary${this.params("csv")}`, download: "" }, t("reports.csv")),
      ),
      this.error && h("p", { class: "error", role: "alert" }, this.error),
      rows.length === 0 && this.result && h("p", { class: "placeholder" }, t("reports.none")),
      rows.length > 0 && this.chart(rows),
      rows.length > 0 &&
        h(
          "table",
          { class: "grid report", "aria-labelledby": "reports-title" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, t(`reports.by.${this.filters.group_by}`)),
              th("reports.volume"),
              th("reports.frt50"),
              th("reports.frt90"),
              th("reports.frtBusiness50"),
              th("reports.res50"),
              th("reports.res90"),
              th("reports.sla"),
              th("reports.missed"),
            ),
          ),
          h(
            "tbody",
            {},
            rows.map((r) =>
              h(
                "tr",
                { dataset: { key: r.key } },
                h("th", { scope: "row" }, this.filters.group_by === "channel" ? t(`channel.${r.key}`) : r.label),
                h("td", { class: "num" }, String(r.volume)),
                h("td", { class: "num" }, secs(r.first_response.p50_s)),
                h("td", { class: "num" }, secs(r.first_response.p90_s)),
                h("td", { class: "num" }, secs(r.first_response.business_p50_s)),
                h("td", { class: "num" }, secs(r.resolution.p50_s)),
                h("td", { class: "num" }, secs(r.resolution.p90_s)),
                h("td", { class: "num" }, r.sla_attainment == null ? "—" : `${Math.round(r.sla_attainment * 100)} %`),
                h("td", { class: "num" }, String(r.missed_calls)),
              ),
            ),
          ),
        ),
      h(
        "details",
        { class: "definitions" },
        h("summary", {}, t("reports.definitions")),
        h("dl", {}, ["reports.frt50", "reports.res50", "reports.sla", "reports.missed"].map((k) => [h("dt", {}, t(k)), h("dd", {}, t(`${k}.tip`))])),
      ),
    );
  }

  /** First response p50 and p90 per group, as horizontal bars. */
  chart(rows) {
    const width = 560;
    const bar = 14;
    const gap = 10;
    const left = 120;
    const max = Math.max(1, ...rows.flatMap((r) => [r.first_response.p90_s ?? 0, r.first_response.p50_s ?? 0]));
    const scale = (v) => ((v ?? 0) / max) * (width - left - 70);
    const height = rows.length * (2 * bar + gap) + 10;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "chart-title", class: "chart" }, svg("title", { id: "chart-title" }, t("reports.chart")));
    rows.forEach((r, i) => {
      const y = 5 + i * (2 * bar + gap);
      const name = this.filters.group_by === "channel" ? t(`channel.${r.key}`) : r.label;
      chart.append(
        svg("text", { x: 0, y: y + bar + 4, class: "label" }, name),
        svg("rect", { x: left, y, width: scale(r.first_response.p50_s), height: bar - 2, class: "p50" }),
        svg("text", { x: left + scale(r.first_response.p50_s) + 4, y: y + bar - 4, class: "value" }, `p50 ${r.first_response.p50_s == null ? "—" : formatDuration(r.first_response.p50_s)}`),
        svg("rect", { x: left, y: y + bar, width: scale(r.first_response.p90_s), height: bar - 2, class: "p90" }),
        svg("text", { x: left + scale(r.first_response.p90_s) + 4, y: y + 2 * bar - 4, class: "value" }, `p90 ${r.first_response.p90_s == null ? "—" : formatDuration(r.first_response.p90_s)}`),
      );
    });
    return h("figure", { class: "chart" }, chart, h("figcaption", {}, t("reports.chart")));
  }
}
