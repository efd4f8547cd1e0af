// The widget's link to the server: JSON requests, and the stream of a session's events.
//
// `EventStream` prefers a WebSocket and falls back to long-polling when sockets fail twice before
// opening (a proxy that blocks them). Either way every (re)connection asks for the events after
// the last seq the page has shown, so a dropped connection loses nothing; the page ignores any
// event it has already shown. Reconnects back off from 1 s to 15 s with jitter.

const POLL_WAIT_S = 25;

export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

export class Backoff {
  constructor() { this.ms = 0; }
  reset() { this.ms = 0; }
  next() {
    this.ms = Math.min(this.ms ? this.ms * 2 : 1000, 15000);
    return this.ms / 2 + Math.random() * this.ms / 2;
  }
}

export class Api {
  constructor() { this.session = null; }   // {session_id, customer_id, token}

  async request(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.session) headers["Authorization"] = "Bearer " + this.session.token;
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, data, headers: response.headers };
  }

  sessionPath(suffix) {
    return "/api/sessions/" + encodeURIComponent(this.session.session_id) + suffix;
  }
}

// One session's events. `handlers`: onEvent(event), onStatus(state, label), onLost() when the
// server no longer knows the session (401/404). `after()` is the last seq shown.
export class EventStream {
  constructor(api, after, handlers) {
    this.api = api;
    this.after = after;
    this.handlers = handlers;
    this.mode = "WebSocket" in window ? "ws" : "poll";
    this.wsFailures = 0;
    this.everOpened = false;
    this.backoff = new Backoff();
    this.socket = null;
    this.stopped = false;
  }

  start() {
    if (this.mode === "ws") this.connectSocket(); else this.pollLoop();
  }

  stop() {
    this.stopped = true;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = socket.onerror = socket.onmessage = null;
      try { socket.close(1000); } catch (e) { /* already closed */ }
    }
  }

  // The browser is back online: reconnect now rather than at the end of a backoff.
  nudge() {
    this.backoff.reset();
    if (!this.stopped && this.mode === "ws" && !this.socket) this.connectSocket();
  }

  connectSocket() {
    if (this.stopped) return;
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + window.location.host + this.api.sessionPath("/ws") +
      "?token=" + encodeURIComponent(this.api.session.token) + "&after=" + this.after();
    let opened = false;
    let socket;
    try { socket = new WebSocket(url); } catch (e) { this.mode = "poll"; this.pollLoop(); return; }
    this.socket = socket;
    socket.onopen = () => {
      opened = true;
      this.everOpened = true;
      this.wsFailures = 0;
      this.backoff.reset();
      this.handlers.onStatus("online", "Connected");
    };
    socket.onmessage = (message) => {
      let event = null;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      this.handlers.onEvent(event);
    };
    socket.onclose = async (close) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (close.code === 4401 || close.code === 4404) { this.handlers.onLost(); return; }
      if (!opened) this.wsFailures += 1;
      this.handlers.onStatus("offline", "Reconnecting…");
      if (!this.everOpened && this.wsFailures >= 2) {
        this.mode = "poll";   // sockets never get through on this network: long-poll instead
        this.pollLoop();
        return;
      }
      await sleep(opened ? 200 : this.backoff.next());   // a server's idle close: come back at once
      if (!this.stopped && !this.socket) this.connectSocket();
    };
  }

  async pollLoop() {
    while (!this.stopped) {
      let result;
      try {
        result = await this.api.request(
          "GET", this.api.sessionPath("/events?after=" + this.after() + "&wait=" + POLL_WAIT_S));
      } catch (e) {
        this.handlers.onStatus("offline", "Reconnecting…");
        await sleep(this.backoff.next());
        continue;
      }
      if (this.stopped) return;
      if (result.status === 200 && result.data && Array.isArray(result.data.events)) {
        this.backoff.reset();
        this.handlers.onStatus("online", "Connected");
        result.data.events.forEach((event) => this.handlers.onEvent(event));
      } else if (result.status === 401 || result.status === 404) {
        this.handlers.onLost();
        return;
      } else {
        this.handlers.onStatus("offline", "Reconnecting…");
        await sleep(this.backoff.next());
      }
    }
  }
}
