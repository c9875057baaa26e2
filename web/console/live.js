// The agent socket: hub events in, this agent's activity out. Reconnects with backoff; after a
// reconnect or a "resync" (the hub dropped events for a slow consumer) the console reloads
// what it shows from the API, so nothing missed stays missing.

export class Live {
  constructor(onEvent, onResync) {
    this.onEvent = onEvent;
    this.onResync = onResync;
    this.delay = 500;
    this.socket = null;
    this.closed = false;
    this.everOpened = false;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = 500;
      if (this.everOpened) this.onResync();
      this.everOpened = true;
      document.body.dataset.live = "connected";
    });
    socket.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === "resync") this.onResync();
      else this.onEvent(event);
    });
    socket.addEventListener("close", () => {
      document.body.dataset.live = "disconnected";
      if (this.closed) return;
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 15000);
    });
  }

  /** Tells other agents what this one is doing in a conversation. */
  activity(conversationId, activity) {
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "activity", conversation_id: conversationId, activity }));
    }
  }

  close() {
    this.closed = true;
    this.socket?.close();
  }
}
