// One conversation: its messages on whatever channel (email in a sandboxed frame, chat, SMS
// with delivery state, calls with duration and outcome), the reply box that answers on the
// conversation's own channel, internal notes, canned responses, labels, assignment, status,
// and what other agents are doing in it right now.

import * as api from "./api.js";
import { h, fill } from "./dom.js";
import { t, formatTime, formatDuration } from "./i18n.js";
import { slaBadge } from "./inbox.js";

/** How long a "replying" or "typing" notice stays up without a fresh one. */
const NOTICE_MS = 8000;
/** How often this agent tells the others it is still replying. */
const ACTIVITY_EVERY_MS = 3000;

export class ConversationView {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.id = null;
    this.data = null;
    this.contact = null;
    this.mode = "reply";
    this.draft = { reply: "", note: "" };
    this.others = new Map();
    this.customerTypingUntil = 0;
    this.lastActivitySent = 0;
    this.canned = [];
    this.error = null;
    setInterval(() => this.renderNotices(), 1000);
  }

  async open(id) {
    if (this.id && this.id !== id) this.app.live.activity(this.id, "left");
    const changed = this.id !== id;
    this.id = id;
    if (changed) {
      this.others.clear();
      this.draft = { reply: "", note: "" };
      this.mode = "reply";
      this.error = null;
      this.lastActivitySent = 0;
    }
    await this.reload();
    this.app.live.activity(id, "viewing");
    if (this.data) this.app.openContact(this.data.conversation.contact_id);
  }

  close() {
    if (this.id) this.app.live.activity(this.id, "left");
    this.id = null;
    this.data = null;
  }

  async reload() {
    if (!this.id) return;
    const id = this.id;
    const [data, canned] = await Promise.all([api.get(`/conversations/${id}`), api.get("/canned-responses")]);
    if (id !== this.id) return;
    this.data = data;
    this.canned = canned;
    this.contact = await api.get(`/contacts/${data.conversation.contact_id}`);
    if (this.app.center === this) this.render();
  }

  onEvent(event) {
    if (!this.data) return;
    const mine = (conversationId) => conversationId === this.id;
    switch (event.type) {
      case "interaction_created":
      case "interaction_updated":
        if (mine(event.interaction.conversation_id)) this.reloadSoon();
        break;
      case "conversation_changed":
        if (mine(event.conversation.id)) this.reloadSoon();
        break;
      case "delivery_changed":
        if (this.data.interactions.some((i) => i.id === event.interaction_id)) this.reloadSoon();
        break;
      case "agent_activity":
        if (!mine(event.conversation_id)) break;
        if (event.activity === "left") this.others.delete(event.agent_id);
        else this.others.set(event.agent_id, { name: event.agent_name, activity: event.activity, at: Date.now() });
        this.renderNotices();
        break;
      case "customer_read":
        if (mine(event.conversation_id)) this.reloadSoon();
        break;
      case "customer_typing":
        if (mine(event.conversation_id)) {
          this.customerTypingUntil = Date.now() + NOTICE_MS;
          this.renderNotices();
        }
        break;
    }
  }

  reloadSoon() {
    clearTimeout(this.pendingReload);
    this.pendingReload = setTimeout(() => this.reload(), 50);
  }

  handleValue() {
    const handle = this.contact?.handles.find((x) => x.id === this.data.conversation.handle_id);
    return handle?.value ?? "";
  }

  render() {
    if (!this.data) {
      fill(this.root, h("p", { class: "placeholder" }, t("conversation.none")));
      return;
    }
    const c = this.data.conversation;
    const name = this.contact?.name || this.handleValue();
    this.notices = h("div", { class: "notices", role: "status", "aria-live": "polite" });
    this.noticeText = null;
    fill(
      this.root,
      h(
        "header",
        { class: "conversation-head" },
        h("h2", { id: "conversation-title" }, h("span", { class: `channel channel-${c.channel}` }, t(`channel.${c.channel}`)), " ", name, c.subject ? ` — ${c.subject}` : ""),
        this.renderControls(c),
        this.renderLabels(),
      ),
      this.notices,
      h("ol", { class: "messages", "aria-labelledby": "conversation-title" }, this.data.interactions.map((i) => this.renderMessage(i))),
      this.renderComposer(c),
    );
    this.renderNotices();
    const list = this.root.querySelector(".messages");
    list.scrollTop = list.scrollHeight;
  }

  renderControls(c) {
    const status = h(
      "select",
      { id: "conversation-status", onchange: () => this.setStatus(status.value) },
      ["open", "pending", "snoozed", "resolved"].map((s) => h("option", { value: s, selected: c.status === s }, t(`status.${s}`))),
    );
    const priority = h(
      "select",
      { id: "conversation-priority", onchange: () => this.setPriority(priority.value) },
      ["low", "normal", "high", "urgent"].map((p) => h("option", { value: p, selected: c.priority === p }, t(`priority.${p}`))),
    );
    const assignee = h(
      "select",
      { id: "conversation-assignee", onchange: () => this.assign(assignee.value || null) },
      h("option", { value: "" }, t("inbox.nobody")),
      [...this.app.agents.values()].map((a) => h("option", { value: a.id, selected: c.assignee_id === a.id }, a.name)),
    );
    const resolved = c.status === "resolved";
    return h(
      "div",
      { class: "controls" },
      h("label", { for: "conversation-status" }, t("conversation.status")),
      status,
      h("label", { for: "conversation-assignee" }, t("conversation.assignee")),
      assignee,
      h("label", { for: "conversation-priority" }, t("conversation.priority")),
      priority,
      c.priority_reason && h("span", { class: "priority-reason", id: "priority-reason" }, t("conversation.priorityReason", { reason: c.priority_reason })),
      slaBadge({ ...c, sla_breached: c.sla_due_at && new Date(c.sla_due_at) <= new Date() }),
      h(
        "button",
        { type: "button", id: "resolve", "aria-keyshortcuts": "e", onclick: () => this.setStatus(resolved ? "open" : "resolved") },
        t(resolved ? "conversation.reopen" : "conversation.resolve"),
      ),
    );
  }

  renderLabels() {
    const input = h("input", { id: "label-input", list: "label-choices", autocomplete: "off" });
    return h(
      "form",
      {
        class: "labels",
        onsubmit: (event) => {
          event.preventDefault();
          if (input.value.trim()) this.setLabels([...this.data.labels, input.value.trim()]);
        },
      },
      h("span", { class: "labels-title" }, t("conversation.labels")),
      this.data.labels.map((label) =>
        h(
          "span",
          { class: "label" },
          label,
          h(
            "button",
            {
              type: "button",
              "aria-label": t("conversation.removeLabel", { label }),
              onclick: () => this.setLabels(this.data.labels.filter((l) => l !== label)),
            },
            "×",
          ),
        ),
      ),
      h("label", { for: "label-input", class: "visually-hidden" }, t("conversation.addLabel")),
      input,
      h("datalist", { id: "label-choices" }, this.app.inbox.labels.map((l) => h("option", { value: l }))),
    );
  }

  renderMessage(i) {
    const author =
      i.direction === "inbound"
        ? this.contact?.name || t("conversation.customer")
        : i.author_agent_id === this.app.me.id
          ? t("conversation.you")
          : this.app.agentName(i.author_agent_id);
    const body = [];
    if (i.channel === "voice") {
      body.push(this.renderCall(i));
    } else if (i.html) {
      // Sanitised by the hub, and still shown in a frame with every permission taken away.
      const frame = h("iframe", { class: "email-body", sandbox: "", srcdoc: i.html, title: i.subject ?? t("channel.email"), referrerpolicy: "no-referrer" });
      body.push(frame);
      showInlineImages(frame, i);
    } else {
      body.push(h("p", { class: "text" }, i.text ?? ""));
    }
    const delivery = this.data.deliveries?.[i.id];
    return h(
      "li",
      { class: `message ${i.direction}`, dataset: { id: i.id, direction: i.direction, channel: i.channel } },
      h(
        "div",
        { class: "message-head" },
        h("span", { class: "author" }, i.direction === "note" ? `${t("conversation.agentNote")} · ${author}` : author),
        h("time", { datetime: i.occurred_at }, formatTime(i.occurred_at)),
        delivery && h("span", { class: `delivery ${deliveryState(delivery)}` }, t(`conversation.${deliveryState(delivery)}`)),
        i.direction === "outbound" && i.conversation_seq && i.conversation_seq <= this.data.conversation.customer_read_seq && h("span", { class: "seen" }, t("conversation.seen")),
        // A customer's mail threaded into the wrong conversation moves into one of its own.
        i.channel === "email" && i.direction === "inbound" && this.data.interactions.length > 1 &&
          h("button", { type: "button", class: "split", title: t("conversation.splitHint"), onclick: () => this.split(i.id) }, t("conversation.split")),
      ),
      i.subject && i.channel === "email" && h("p", { class: "subject" }, `${t("conversation.subject")}: ${i.subject}`),
      body,
      i.attachments.length > 0 &&
        h(
          "ul",
          { class: "attachments", "aria-label": t("conversation.attachments") },
          i.attachments.map((a) =>
            h("li", {}, a.sha256 ? h("a", { href: `/api/v1/attachments/${a.sha256}`, download: a.name ?? "" }, a.name ?? a.sha256.slice(0, 12)) : a.url ? h("a", { href: a.url, rel: "noreferrer noopener", target: "_blank" }, a.name ?? a.url) : a.name),
          ),
        ),
    );
  }

  renderCall(i) {
    const d = i.details ?? {};
    const parts = [t(i.direction === "outbound" ? "call.outbound" : "call.inbound")];
    if (d.disposition) parts.push(t(`call.${d.disposition}`));
    if (d.duration_s != null) parts.push(t("call.duration", { time: formatDuration(d.duration_s) }));
    if (d.talk_s) parts.push(t("call.talk", { time: formatDuration(d.talk_s) }));
    return h(
      "div",
      { class: "call", dataset: { disposition: d.disposition ?? "" } },
      h("p", {}, parts.join(" · ")),
      d.notes && h("p", { class: "text" }, d.notes),
      d.recording_url && h("a", { href: d.recording_url, rel: "noreferrer noopener", target: "_blank" }, t("call.recording")),
    );
  }

  renderComposer(c) {
    const replying = this.mode === "reply";
    const box = h("textarea", {
      id: "composer",
      rows: 4,
      placeholder: t(replying ? "conversation.replyPlaceholder" : "conversation.notePlaceholder"),
      oninput: () => {
        this.draft[this.mode] = box.value;
        if (replying && Date.now() - this.lastActivitySent > ACTIVITY_EVERY_MS) {
          this.lastActivitySent = Date.now();
          this.app.live.activity(this.id, "replying");
        }
      },
      onkeydown: (event) => {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          send();
        }
      },
    });
    box.value = this.draft[this.mode];
    const send = async () => {
      const text = box.value.trim();
      if (!text) return;
      try {
        await api.post(`/conversations/${this.id}/${replying ? "replies" : "notes"}`, { text });
        this.draft[this.mode] = "";
        this.error = null;
        await this.reload();
        this.root.querySelector("#composer")?.focus();
      } catch (error) {
        this.error = t("conversation.failedToSend", { error: error.message });
        this.render();
      }
    };
    const canned = h(
      "select",
      {
        id: "canned",
        onchange: () => {
          const chosen = this.canned.find((r) => r.id === canned.value);
          if (chosen) {
            box.value = (box.value ? `${box.value}\n` : "") + this.fillPlaceholders(chosen.body);
            this.draft[this.mode] = box.value;
            box.focus();
          }
          canned.value = "";
        },
      },
      h("option", { value: "" }, "—"),
      this.canned.map((r) => h("option", { value: r.id }, `/${r.shortcut} · ${r.title}`)),
    );
    const tab = (mode, label) =>
      h(
        "button",
        {
          type: "button",
          class: "tab",
          "aria-pressed": String(this.mode === mode),
          "aria-keyshortcuts": mode === "reply" ? "r" : "n",
          onclick: () => this.setMode(mode),
        },
        label,
      );
    return h(
      "form",
      {
        class: `composer ${this.mode}`,
        onsubmit: (event) => {
          event.preventDefault();
          send();
        },
      },
      h("div", { class: "tabs" }, tab("reply", t("conversation.reply")), tab("note", t("conversation.note"))),
      h("p", { class: "hint", id: "composer-hint" }, replying ? t("conversation.replyOn", { channel: t(`channel.${c.channel}`), handle: this.handleValue() }) : t("conversation.noteHint")),
      h("label", { for: "composer", class: "visually-hidden" }, t(replying ? "conversation.reply" : "conversation.note")),
      box,
      this.error && h("p", { class: "error", role: "alert" }, this.error),
      h(
        "div",
        { class: "composer-actions" },
        h("label", { for: "canned" }, t("conversation.canned")),
        canned,
        h("button", { type: "submit", class: "primary" }, t(replying ? "conversation.send" : "conversation.addNote")),
      ),
    );
  }

  /** Fills `{{contact.name}}`, `{{contact.first_name}}` and `{{agent.name}}` for this conversation. */
  fillPlaceholders(body) {
    const name = this.contact?.name ?? "";
    const values = {
      "contact.name": name,
      "contact.first_name": name.split(/\s+/)[0] ?? "",
      "agent.name": this.app.me.name,
    };
    return body.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (whole, key) => values[key] ?? whole);
  }

  setMode(mode) {
    this.mode = mode;
    this.render();
    this.root.querySelector("#composer")?.focus();
  }

  renderNotices() {
    if (!this.notices) return;
    const now = Date.now();
    const lines = [];
    for (const [agentId, other] of this.others) {
      if (other.activity === "replying" && now - other.at > NOTICE_MS) other.activity = "viewing";
      lines.push(
        h(
          "p",
          { class: `notice ${other.activity}`, dataset: { agent: agentId } },
          t(other.activity === "replying" ? "conversation.replying" : "conversation.viewing", { name: other.name }),
        ),
      );
    }
    if (this.customerTypingUntil > now) lines.push(h("p", { class: "notice typing" }, t("conversation.typing")));
    const text = lines.map((l) => l.textContent).join("|");
    if (text !== this.noticeText) {
      this.noticeText = text;
      fill(this.notices, lines);
    }
  }

  async setStatus(status) {
    await api.post(`/conversations/${this.id}/status`, { status });
    await this.reload();
  }

  async setPriority(priority) {
    await api.post(`/conversations/${this.id}/priority`, { priority });
    await this.reload();
  }

  async assign(assigneeId) {
    await api.post(`/conversations/${this.id}/assign`, { assignee_id: assigneeId });
    await this.reload();
  }

  async split(interactionId) {
    try {
      const split = await api.post(`/interactions/${interactionId}/split`, {});
      this.app.openConversation(split.conversation.id);
    } catch (error) {
      this.error = error.message;
      this.render();
    }
  }

  async setLabels(labels) {
    try {
      this.data.labels = await api.put(`/conversations/${this.id}/labels`, { labels });
      this.error = null;
    } catch (error) {
      this.error = error.message;
    }
    this.render();
    this.root.querySelector("#label-input")?.focus();
  }
}

/**
 * Shows a mail's inline images: its HTML names them with `cid:` URLs pointing at its own
 * attachments. The frame has no origin of its own, so it cannot fetch them with the agent's
 * session; the console fetches them and hands them to the frame as data URLs.
 */
async function showInlineImages(frame, mail) {
  const inline = mail.attachments.filter(
    (a) => a.content_id && a.sha256 && a.content_type.startsWith("image/") && mail.html.includes(`cid:${a.content_id}`),
  );
  if (inline.length === 0) return;
  let html = mail.html;
  for (const attachment of inline) {
    try {
      const response = await fetch(`/api/v1/attachments/${attachment.sha256}`, { credentials: "same-origin" });
      if (!response.ok) continue;
      const image = new Blob([await response.blob()], { type: attachment.content_type });
      const url = await new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(reader.result);
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(image);
      });
      html = html.split(`cid:${attachment.content_id}`).join(url);
    } catch {
      // The image stays missing; the mail's text is readable without it.
    }
  }
  frame.srcdoc = html;
}

/** The word for where a message stands: the provider's latest report, else our outbox's. */
function deliveryState(delivery) {
  const provider = delivery.provider_status;
  if (provider === "read") return "read";
  if (provider === "delivered") return "delivered";
  if (provider === "undelivered" || provider === "failed" || delivery.status === "failed") return "failed";
  return delivery.status === "sent" ? "sent" : "pending";
}
