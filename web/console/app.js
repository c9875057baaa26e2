// The agent console: signs the agent in, lays out the inbox, the conversation and the contact
// beside it, and routes hub events from the agent socket to whichever part shows them.

import * as api from "./api.js";
import { h, fill } from "./dom.js";
import { t, lang, setLang, languages } from "./i18n.js";
import { Live } from "./live.js";
import { Inbox } from "./inbox.js";
import { ConversationView } from "./conversation.js";
import { ContactPanel } from "./contact.js";
import { SearchView } from "./search.js";
import { ScreenPops } from "./screenpop.js";
import { Shortcuts } from "./shortcuts.js";
import { Dashboard } from "./dashboard.js";
import { Reports } from "./reports.js";

const root = document.getElementById("app");

boot().catch((error) => {
  fill(root, h("p", { role: "alert" }, error.message));
});

async function boot() {
  setLang(lang());
  try {
    start(await api.get("/auth/me"));
  } catch (error) {
    if (error.status === 401) showLogin();
    else throw error;
  }
}

function showLogin(failed = false) {
  document.title = t("login.title");
  const email = h("input", { id: "login-email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { id: "login-password", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api.post("/auth/login", { email: email.value, password: password.value });
          start(await api.get("/auth/me"));
        } catch (error) {
          if (error.status === 401 || error.status === 422) showLogin(true);
          else fill(root, h("p", { role: "alert" }, error.message));
        }
      },
    },
    h("h1", {}, t("login.title")),
    failed && h("p", { role: "alert", class: "error" }, t("login.failed")),
    h("label", { for: "login-email" }, t("login.email")),
    email,
    h("label", { for: "login-password" }, t("login.password")),
    password,
    h("button", { type: "submit" }, t("login.submit")),
  );
  fill(root, form);
  root.removeAttribute("aria-busy");
  email.focus();
}

function start(me) {
  api.setCsrf(me.csrf_token);
  new Console(me.agent);
}

/** The signed-in console. Holds the parts and what they share. */
class Console {
  constructor(agent) {
    this.me = agent;
    this.agents = new Map();
    this.header = h("header", { class: "top" });
    this.inboxRoot = h("nav", { class: "inbox", "aria-labelledby": "inbox-title" });
    this.centerRoot = h("main", { class: "center", id: "main" });
    this.contactRoot = h("aside", { class: "contact", "aria-labelledby": "contact-title" });
    this.popRoot = h("div", { class: "pops" });
    fill(root, this.header, this.popRoot, h("div", { class: "panes" }, this.inboxRoot, this.centerRoot, this.contactRoot));
    root.removeAttribute("aria-busy");

    this.live = new Live(
      (event) => this.dispatch(event),
      () => this.refresh(),
    );
    this.inbox = new Inbox(this.inboxRoot, this);
    this.conversation = new ConversationView(this.centerRoot, this);
    this.search = new SearchView(this.centerRoot, this);
    this.contact = new ContactPanel(this.contactRoot, this);
    this.pops = new ScreenPops(this.popRoot, this);
    this.shortcuts = new Shortcuts(this);
    this.dashboard = new Dashboard(this.centerRoot, this);
    this.reports = new Reports(this.centerRoot, this);
    this.center = this.conversation;

    this.renderHeader();
    this.loadAgents();
    this.inbox.load();
    this.conversation.render();
    this.contact.render();
    this.live.connect();
    window.addEventListener("hashchange", () => this.route());
    this.route();
  }

  async loadAgents() {
    const agents = await api.get("/agents");
    this.agents = new Map(agents.map((a) => [a.id, a]));
    this.conversation.render();
  }

  agentName(id) {
    return this.agents.get(id)?.name ?? "";
  }

  isSupervisor() {
    return this.me.role === "supervisor" || this.me.role === "admin";
  }

  /** Shows a whole-pane view in the centre: the dashboard or the reports. */
  show(view) {
    this.conversation.close();
    this.center = view;
    view.render();
    view.open();
  }

  /** Follows the address bar: `#/conversations/ID`, `#/contacts/ID`, `#/search/QUERY`,
   * `#/dashboard`, `#/reports`. */
  route() {
    const [, kind, value] = location.hash.split("/");
    if (kind === "inbox") {
      this.conversation.close();
      this.center = this.conversation;
      this.conversation.render();
    } else if (kind === "dashboard" && this.isSupervisor()) this.show(this.dashboard);
    else if (kind === "reports" && this.isSupervisor()) this.show(this.reports);
    else if (kind === "conversations" && value) this.openConversation(value, { fromRoute: true });
    else if (kind === "contacts" && value) this.contact.open(value);
    else if (kind === "search" && value) this.runSearch(decodeURIComponent(value), { fromRoute: true });
  }

  openConversation(id, { fromRoute = false } = {}) {
    if (!fromRoute && location.hash !== `#/conversations/${id}`) {
      location.hash = `#/conversations/${id}`;
      return;
    }
    this.center = this.conversation;
    this.inbox.select(id);
    this.conversation.open(id);
  }

  openContact(id) {
    this.contact.open(id);
  }

  runSearch(query, { fromRoute = false } = {}) {
    if (!fromRoute) {
      location.hash = `#/search/${encodeURIComponent(query)}`;
      return;
    }
    this.conversation.close();
    this.center = this.search;
    this.search.run(query);
  }

  dispatch(event) {
    this.inbox.onEvent(event);
    this.conversation.onEvent(event);
    this.contact.onEvent(event);
    this.pops.onEvent(event);
    this.dashboard.onEvent(event);
    if (event.type === "presence_changed") {
      this.agents.set(event.agent.id, event.agent);
      if (event.agent.id === this.me.id) {
        this.me = event.agent;
        this.renderHeader();
      }
    }
  }

  /** Reloads everything shown, after a reconnect or a resync. */
  refresh() {
    this.inbox.load();
    this.conversation.reload();
    this.contact.reload();
  }

  changeLanguage(next) {
    setLang(next);
    this.renderHeader();
    this.inbox.render();
    this.center.render();
    this.contact.render();
    this.pops.render();
  }

  renderHeader() {
    document.title = t("app.name");
    const search = h("input", {
      id: "search-box",
      type: "search",
      placeholder: t("header.searchPlaceholder"),
      "aria-label": t("header.search"),
    });
    const presence = h(
      "select",
      {
        id: "presence",
        onchange: async () => {
          this.me = await api.put("/auth/me/presence", { presence: presence.value });
          this.renderHeader();
        },
      },
      ["online", "away", "offline"].map((p) => h("option", { value: p, selected: this.me.presence === p }, t(`presence.${p}`))),
    );
    const language = h(
      "select",
      { id: "language", onchange: () => this.changeLanguage(language.value) },
      Object.entries(languages).map(([code, name]) => h("option", { value: code, selected: lang() === code, lang: code }, name)),
    );
    fill(
      this.header,
      h("strong", { class: "brand" }, t("app.name")),
      h(
        "nav",
        { class: "views", "aria-label": t("app.name") },
        h("a", { href: "#/inbox" }, t("header.inbox")),
        this.isSupervisor() && h("a", { href: "#/dashboard", id: "nav-dashboard" }, t("header.dashboard")),
        this.isSupervisor() && h("a", { href: "#/reports", id: "nav-reports" }, t("header.reports")),
      ),
      h(
        "form",
        {
          role: "search",
          onsubmit: (event) => {
            event.preventDefault();
            if (search.value.trim()) this.runSearch(search.value.trim());
          },
        },
        search,
        h("button", { type: "submit" }, t("header.search")),
      ),
      h("span", { class: "live-state", role: "status" }, document.body.dataset.live === "disconnected" ? t("header.offline") : ""),
      h("span", { class: "me" }, h("span", { class: `presence-dot ${this.me.presence}`, "aria-hidden": "true" }), this.me.name, " · ", t(`role.${this.me.role}`)),
      h("label", { for: "presence" }, t("header.presence")),
      presence,
      h("label", { for: "language" }, t("header.language")),
      language,
      h("button", { type: "button", onclick: () => this.shortcuts.show(), "aria-keyshortcuts": "?" }, t("header.shortcuts")),
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            this.live.close();
            await api.post("/auth/logout");
            location.hash = "";
            showLogin();
          },
        },
        t("header.logout"),
      ),
    );
  }
}
