// Switchboard chat widget. Embed with one tag:
//   <script src="https://HUB/widget/switchboard-chat.js" data-account="CHAT ACCOUNT ID" async></script>
// It adds a launcher button and a chat panel to the page. The visitor's token, the last message
// position seen and unsent messages are kept in localStorage, so a reload or a new tab continues
// the same conversation and a dropped connection resumes without losing anything. Visitor and
// agent text is only ever inserted as text, never as HTML.
(function () {
  "use strict";
  const script = document.currentScript;
  const account = script && script.dataset.account;
  if (!account) {
    console.error("switchboard chat: the script tag needs a data-account attribute");
    return;
  }
  const hub = new URL(script.src).origin;
  const language = (document.documentElement.lang || navigator.language || "en").slice(0, 2).toLowerCase();
  const texts = {
    en: { open: "Chat with us", title: "Chat", placeholder: "Write a message…", send: "Send", close: "Close chat", reconnecting: "Reconnecting…", failed: "Not sent", waiting: "Sending in a moment…", seen: "Seen" },
    es: { open: "Habla con nosotros", title: "Chat", placeholder: "Escribe un mensaje…", send: "Enviar", close: "Cerrar el chat", reconnecting: "Reconectando…", failed: "No enviado", waiting: "Enviando en un momento…", seen: "Visto" },
  }[language === "es" ? "es" : "en"];

  const storageKey = "switchboard-chat:" + account;
  const saved = JSON.parse(localStorage.getItem(storageKey) || "{}");
  const state = { token: saved.token || null, lastSeq: saved.lastSeq || 0, pending: saved.pending || [] };
  const save = () => localStorage.setItem(storageKey, JSON.stringify(state));
  const rendered = new Set();

  const style = document.createElement("style");
  style.textContent = `
    .sbc-launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;padding:12px 18px;background:#1f6feb;color:#fff;font:600 15px system-ui,sans-serif;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.2)}
    .sbc-launcher:focus-visible,.sbc-panel button:focus-visible,.sbc-panel input:focus-visible{outline:3px solid #f0b400;outline-offset:2px}
    .sbc-panel{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:320px;max-width:calc(100vw - 40px);height:420px;display:flex;flex-direction:column;background:#fff;color:#1b1f24;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);font:14px system-ui,sans-serif}
    .sbc-panel[hidden]{display:none}
    .sbc-head{display:flex;justify-content:space-between;align-items:center;padding:10px 14px;border-bottom:1px solid #e3e6ea;font-weight:600}
    .sbc-head button{border:0;background:none;font-size:18px;cursor:pointer}
    .sbc-log{flex:1;overflow-y:auto;margin:0;padding:10px 14px;list-style:none}
    .sbc-log li{margin:6px 0;padding:8px 10px;border-radius:10px;max-width:85%;white-space:pre-wrap;overflow-wrap:anywhere}
    .sbc-log li[data-direction=inbound]{margin-left:auto;background:#1f6feb;color:#fff}
    .sbc-log li[data-direction=outbound],.sbc-log li[data-direction=system]{background:#eef1f4}
    .sbc-log li[data-state=pending]{opacity:.6}
    .sbc-log li[data-state=seen]::after{content:attr(data-seen);display:block;font-size:11px;opacity:.8;text-align:right}
    .sbc-status{padding:0 14px;color:#8a5300;font-size:12px;min-height:16px}
    .sbc-form{display:flex;gap:6px;padding:10px;border-top:1px solid #e3e6ea}
    .sbc-form input{flex:1;padding:8px;border:1px solid #c9ced4;border-radius:8px;font:inherit}
    .sbc-form button{border:0;border-radius:8px;padding:8px 12px;background:#1f6feb;color:#fff;font:inherit;cursor:pointer}`;
  document.head.appendChild(style);

  const element = (tag, props, children) => {
    const node = Object.assign(document.createElement(tag), props || {});
    (children || []).forEach((child) => node.appendChild(child));
    return node;
  };
  const panelId = "sbc-panel-" + account;
  const launcher = element("button", { className: "sbc-launcher", type: "button", textContent: texts.open });
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", panelId);
  const log = element("ul", { className: "sbc-log" });
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  const status = element("div", { className: "sbc-status" });
  status.setAttribute("role", "status");
  const input = element("input", { type: "text", placeholder: texts.placeholder, maxLength: 10000 });
  input.setAttribute("aria-label", texts.placeholder);
  const form = element("form", { className: "sbc-form" }, [input, element("button", { type: "submit", textContent: texts.send })]);
  const close = element("button", { type: "button", textContent: "×" });
  close.setAttribute("aria-label", texts.close);
  const panel = element("section", { className: "sbc-panel", id: panelId, hidden: true }, [
    element("div", { className: "sbc-head" }, [element("span", { textContent: texts.title }), close]),
    log,
    status,
    form,
  ]);
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", texts.title);
  document.body.appendChild(launcher);
  document.body.appendChild(panel);

  const toggle = (open) => {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      input.focus();
      markRead();
    } else launcher.focus();
  };
  launcher.addEventListener("click", () => toggle(panel.hidden));
  close.addEventListener("click", () => toggle(false));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") toggle(false);
  });

  const render = (direction, text, key, pending) => {
    let item = key && log.querySelector(`li[data-key="${CSS.escape(key)}"]`);
    if (!item) {
      item = element("li", { textContent: text });
      item.dataset.direction = direction;
      if (key) item.dataset.key = key;
      log.appendChild(item);
      log.scrollTop = log.scrollHeight;
    }
    item.dataset.state = pending ? "pending" : "delivered";
    return item;
  };

  let socket = null;
  let backoff = 500;
  let readSeq = 0;
  // A read receipt for what the visitor can see: the panel open, the page in front.
  const markRead = () => {
    if (panel.hidden || document.visibilityState !== "visible" || state.lastSeq <= readSeq) return;
    if (sendFrame({ type: "read", seq: state.lastSeq })) readSeq = state.lastSeq;
  };
  document.addEventListener("visibilitychange", markRead);
  const sendFrame = (frame) => {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  };

  const onFrame = (frame) => {
    if (frame.type === "ack") {
      state.pending = state.pending.filter((p) => p.client_id !== frame.client_id);
      if (status.textContent === texts.waiting) status.textContent = "";
      state.lastSeq = Math.max(state.lastSeq, frame.seq || 0);
      save();
      rendered.add(frame.id);
      const item = render("inbound", "", frame.client_id, false);
      item.dataset.id = frame.id;
    } else if (frame.type === "message") {
      if (frame.seq) state.lastSeq = Math.max(state.lastSeq, frame.seq);
      save();
      if (rendered.has(frame.id)) return;
      rendered.add(frame.id);
      const key = frame.client_id || frame.id;
      render(frame.direction, frame.text || "", key, false).dataset.id = frame.id;
      markRead();
    } else if (frame.type === "read") {
      // An agent has the conversation open: what the visitor sent so far is seen.
      log.querySelectorAll('li[data-direction="inbound"][data-state="delivered"]').forEach((item) => {
        item.dataset.state = "seen";
        item.dataset.seen = texts.seen;
      });
    } else if (frame.type === "resync") {
      sendFrame({ type: "resume", after_seq: state.lastSeq });
    } else if (frame.type === "error" && frame.code === "rate_limited" && frame.client_id) {
      // Too many messages at once: the hub says when; the same client id is stored once.
      const pending = state.pending.find((p) => p.client_id === frame.client_id);
      status.textContent = texts.waiting;
      if (pending) {
        setTimeout(() => sendFrame({ type: "message", client_id: pending.client_id, text: pending.text }), frame.retry_after_ms || 1000);
      }
    } else if (frame.type === "error" && frame.client_id) {
      const item = log.querySelector(`li[data-key="${CSS.escape(frame.client_id)}"]`);
      if (item) item.dataset.state = "failed";
      status.textContent = texts.failed;
    }
  };

  const connect = async () => {
    try {
      const response = await fetch(`${hub}/chat/${account}/session`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: state.token }),
      });
      if (response.status === 401) {
        Object.assign(state, { token: null, lastSeq: 0 });
        save();
        return connect();
      }
      if (!response.ok) throw new Error("session " + response.status);
      state.token = (await response.json()).token;
      save();
    } catch (error) {
      status.textContent = texts.reconnecting;
      setTimeout(connect, (backoff = Math.min(backoff * 2, 15000)));
      return;
    }
    socket = new WebSocket(`${hub.replace(/^http/, "ws")}/chat/${account}/ws?token=${encodeURIComponent(state.token)}`);
    socket.addEventListener("open", () => {
      backoff = 500;
      status.textContent = "";
      // Everything after the last message seen, then whatever was typed while offline.
      sendFrame({ type: "resume", after_seq: state.lastSeq });
      state.pending.forEach((p) => sendFrame({ type: "message", client_id: p.client_id, text: p.text }));
    });
    socket.addEventListener("message", (event) => {
      try {
        onFrame(JSON.parse(event.data));
      } catch (error) {
        console.error("switchboard chat: unreadable frame", error);
      }
    });
    socket.addEventListener("close", () => {
      status.textContent = texts.reconnecting;
      setTimeout(connect, (backoff = Math.min(backoff * 2, 15000)));
    });
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const message = { client_id: crypto.randomUUID(), text };
    state.pending.push(message);
    save();
    render("inbound", text, message.client_id, true);
    sendFrame({ type: "message", client_id: message.client_id, text });
    input.value = "";
  });

  state.pending.forEach((p) => render("inbound", p.text, p.client_id, true));
  connect();
})();
