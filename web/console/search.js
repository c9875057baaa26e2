// Search from one box: a phone number or an email address jumps straight to its contact;
// anything else is full-text search over every touchpoint (accent- and case-insensitive, as the
// index is), with the matches highlighted and filters for channel and dates.

import * as api from "./api.js";
import { h, fill, highlight } from "./dom.js";
import { t, formatTime } from "./i18n.js";

const CHANNELS = ["email", "chat", "sms", "voice", "api"];

/** Whether the query is a phone number in some spelling: digits with the usual punctuation. */
function looksLikePhone(q) {
  return /^\+?[\d\s().\-/]{6,}$/.test(q) && q.replace(/\D/g, "").length >= 6;
}

function looksLikeEmail(q) {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(q);
}

export class SearchView {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.query = "";
    this.filters = { channel: "", from: "", to: "" };
    this.result = null;
    this.notFound = false;
  }

  async run(query) {
    this.query = query;
    this.notFound = false;
    if (looksLikePhone(query) || looksLikeEmail(query)) {
      try {
        const found = await api.get(`/contacts/lookup${api.query(looksLikePhone(query) ? { phone: query } : { email: query })}`);
        this.app.openContact(found.contact.id);
        const open = found.open_conversations[0];
        if (open) {
          this.app.openConversation(open.id);
          return;
        }
      } catch (error) {
        if (error.status !== 404 && error.status !== 422) throw error;
        this.notFound = error.status === 404;
      }
    }
    await this.load();
  }

  async load() {
    const params = { q: this.query, limit: 50, channel: this.filters.channel };
    if (this.filters.from) params.from = new Date(`${this.filters.from}T00:00:00`).toISOString();
    if (this.filters.to) params.to = new Date(`${this.filters.to}T23:59:59.999`).toISOString();
    try {
      this.result = await api.get(`/search${api.query(params)}`);
      this.error = null;
    } catch (error) {
      this.result = null;
      this.error = error.message;
    }
    this.render();
  }

  render() {
    const channel = h(
      "select",
      { id: "search-channel", onchange: () => ((this.filters.channel = channel.value), this.load()) },
      h("option", { value: "" }, t("inbox.allChannels")),
      CHANNELS.map((c) => h("option", { value: c, selected: this.filters.channel === c }, t(`channel.${c}`))),
    );
    const date = (name, label) => {
      const input = h("input", { id: `search-${name}`, type: "date", value: this.filters[name], onchange: () => ((this.filters[name] = input.value), this.load()) });
      return [h("label", { for: `search-${name}` }, label), input];
    };
    const hits = this.result?.hits ?? [];
    fill(
      this.root,
      h("h2", { id: "search-title" }, t("search.results", { q: this.query })),
      h("div", { class: "filters" }, h("label", { for: "search-channel" }, t("search.channel")), channel, date("from", t("search.from")), date("to", t("search.to"))),
      this.notFound && h("p", { class: "notice" }, t("search.notFound", { q: this.query })),
      this.error && h("p", { class: "error", role: "alert" }, this.error),
      this.result && h("p", { class: "count", role: "status" }, countLine(this.result)),
      this.result && hits.length === 0 && h("p", { class: "placeholder" }, t("search.none")),
      h(
        "ol",
        { class: "hits", "aria-labelledby": "search-title" },
        hits.map(({ interaction: i }) =>
          h(
            "li",
            { dataset: { id: i.id } },
            h(
              "a",
              { href: `#/conversations/${i.conversation_id}` },
              h("span", { class: `channel channel-${i.channel}` }, t(`channel.${i.channel}`)),
              h("time", { datetime: i.occurred_at }, formatTime(i.occurred_at)),
              i.subject && h("strong", { class: "subject" }, highlight(i.subject, this.query)),
              h("span", { class: "text" }, highlight(excerpt(i.text ?? "", this.query), this.query)),
            ),
          ),
        ),
      ),
    );
  }
}

/** "12 results", or "More than 10,000 results" when the server stopped counting. */
function countLine({ total, total_exact: exact }) {
  return t(exact === false ? "search.countAtLeast" : "search.count", { n: total.toLocaleString() });
}

/** Up to 300 characters of the text, starting shortly before the first match when it is far in. */
function excerpt(text, query) {
  if (text.length <= 300) return text;
  const fold = (s) => s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  const word = fold(query.split(/\s+/)[0] ?? "");
  const at = word ? fold(text).indexOf(word) : -1;
  const start = at > 100 ? at - 80 : 0;
  return (start ? "…" : "") + text.slice(start, start + 300) + (start + 300 < text.length ? "…" : "");
}
