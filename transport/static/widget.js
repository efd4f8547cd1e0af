// The customer chat widget: talks to the customer API of this server (no build step, no library).
//
// - Opens a session (POST /api/sessions) with the customer_id remembered in localStorage, so a
//   returning customer keeps their history; the live session itself is kept in sessionStorage so a
//   reload of the tab resumes it.
// - Receives events over a WebSocket and falls back to long-polling; either way it resumes from the
//   last sequence number it has shown, and ignores any event it has already shown.
// - Renders every text with textContent: nothing a customer or an agent types is parsed as HTML.
"use strict";

(function () {
  const STORE_CUSTOMER = "takeover.customer_id";
  const STORE_SESSION = "takeover.session";
  const POLL_WAIT_S = 25;

  const $ = (id) => document.getElementById(id);
  const ui = {
    log: $("log"), text: $("text"), send: $("send"), composer: $("composer"),
    notice: $("notice"), counter: $("counter"), conn: $("conn"), end: $("end-chat"),
    searching: $("searching"), searchingSub: $("searching-sub"), closedBox: $("closed-box"),
    newChat: $("new-chat"), title: $("chat-title"), whoSub: $("who-sub"), whoAvatar: $("who-avatar"),
  };

  const state = {
    config: { max_wait_s: 0, max_text_chars: 4000, title: "Support" },
    session: null,          // {session_id, customer_id, token}
    lastSeq: 0,
    shown: new Set(),       // seqs already on screen
    pending: new Map(),     // seq -> bubble of a message sent by this page
    agent: null,
    closed: false,
    generation: 0,          // bumps when the session changes: stale loops stop
    mode: "ws",             // "ws" or "poll"
    wsFailures: 0,
    backoff: 0,
    socket: null,
  };

  // ---------- small helpers ----------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function storage(kind) {
    try { return window[kind]; } catch (e) { return null; }
  }

  function load(kind, key) {
    const s = storage(kind);
    if (!s) return null;
    try { return JSON.parse(s.getItem(key)); } catch (e) { return null; }
  }

  function save(kind, key, value) {
    const s = storage(kind);
    if (!s) return;
    try {
      if (value === null) s.removeItem(key); else s.setItem(key, JSON.stringify(value));
    } catch (e) { /* private mode or full: the widget still works without memory */ }
  }

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  function nextBackoffMs() {
    state.backoff = Math.min(state.backoff ? state.backoff * 2 : 1000, 15000);
    return state.backoff / 2 + Math.random() * state.backoff / 2;
  }

  function clockTime(at) {
    const d = typeof at === "number" ? new Date(at * 1000) : new Date();
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function humanDuration(seconds) {
    // An upper bound, so round up: 135 s is "3 minutes", not "2 minutes".
    if (!seconds || seconds <= 0) return "";
    if (seconds < 90) return Math.ceil(seconds) + " seconds";
    return Math.ceil(seconds / 60) + " minutes";
  }

  function safeUrl(url) {
    if (typeof url !== "string" || !url) return null;
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (e) { return null; }
  }

  function initials(name) {
    const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
    return ((words[0] || "?")[0] + (words.length > 1 ? words[words.length - 1][0] : "")).toUpperCase();
  }

  function avatar(agent, className) {
    const box = el("div", "avatar " + (className || ""));
    box.setAttribute("aria-hidden", "true");
    const letters = el("span", "initials", agent ? initials(agent.display_name || agent.real_name) : "AI");
    box.appendChild(letters);
    const src = agent && safeUrl(agent.avatar_url);
    if (src) {
      const img = el("img");
      img.alt = "";
      img.addEventListener("error", () => img.remove());
      img.src = src;
      box.appendChild(img);
    }
    return box;
  }

  function agentName(agent) {
    return (agent && (agent.display_name || agent.real_name)) || "An agent";
  }

  function scrollToEnd() { ui.log.scrollTop = ui.log.scrollHeight; }

  function notice(text) {
    ui.notice.textContent = text || "";
    ui.notice.hidden = !text;
  }

  function setConn(stateName, label) {
    ui.conn.dataset.state = stateName;
    ui.conn.textContent = label;
  }

  // ---------- rendering ----------

  function bubble(kind, who, text, at, agent) {
    const item = el("li", "msg msg-" + kind);
    if (kind !== "customer") item.appendChild(avatar(kind === "agent" ? agent : null, kind === "bot" ? "avatar-bot" : ""));
    const body = el("div", "msg-body");
    const meta = el("p", "msg-meta");
    meta.appendChild(el("span", "msg-who", who));
    meta.appendChild(el("time", "msg-time", clockTime(at)));
    body.appendChild(meta);
    body.appendChild(el("p", "msg-text", text));
    item.appendChild(body);
    ui.log.appendChild(item);
    scrollToEnd();
    return item;
  }

  function systemLine(text, extraClass) {
    const item = el("li", "sys " + (extraClass || ""));
    item.appendChild(el("p", "sys-text", text));
    ui.log.appendChild(item);
    scrollToEnd();
    return item;
  }

  function agentCard(agent, at) {
    const item = el("li", "sys agent-card");
    item.appendChild(avatar(agent, "avatar-lg"));
    const text = el("div", "agent-card-text");
    text.appendChild(el("p", "agent-card-title", agentName(agent) + " joined the chat"));
    const parts = [];
    if (agent && agent.real_name && agent.real_name !== agent.display_name) parts.push(agent.real_name);
    if (agent && agent.title) parts.push(agent.title);
    if (parts.length) text.appendChild(el("p", "agent-card-sub", parts.join(" · ")));
    text.appendChild(el("time", "msg-time", clockTime(at)));
    item.appendChild(text);
    ui.log.appendChild(item);
    scrollToEnd();
  }

  async function showHistory() {
    // A returning customer's earlier sessions, muted, above this conversation.
    let result;
    try { result = await api("GET", sessionPath("/history")); } catch (e) { return; }
    if (result.status !== 200 || !result.data || !Array.isArray(result.data.lines)) return;
    const lines = result.data.lines;
    if (!lines.length) return;
    systemLine("Earlier conversation", "divider");
    for (const line of lines) {
      const text = typeof line.text === "string" ? line.text : "";
      let item;
      if (line.speaker === "customer") item = bubble("customer", "You", text, line.at);
      else if (line.speaker === "agent") item = bubble("agent", line.name || "Agent", text, line.at, { display_name: line.name });
      else item = bubble("bot", "Assistant", text, line.at);
      item.classList.add("msg-history");
    }
    systemLine("New conversation", "divider");
  }

  function setHeader(agent) {
    const old = ui.whoAvatar;
    const fresh = avatar(agent, agent ? "" : "avatar-bot");
    fresh.id = "who-avatar";
    old.replaceWith(fresh);
    ui.whoAvatar = fresh;
    if (agent) {
      ui.title.textContent = agentName(agent);
      ui.whoSub.textContent = agent.title || "Support agent";
    } else {
      ui.title.textContent = state.config.title || "Support";
      ui.whoSub.textContent = "Assistant";
    }
  }

  function showSearching(on) {
    ui.searching.hidden = !on;
    if (on) {
      const wait = humanDuration(state.config.max_wait_s);
      ui.searchingSub.textContent = wait
        ? "This can take up to " + wait + ". You can keep writing meanwhile."
        : "You can keep writing meanwhile.";
    }
  }

  function setClosed(closed) {
    state.closed = closed;
    ui.closedBox.hidden = !closed;
    ui.text.disabled = closed || !state.session;
    ui.send.disabled = closed || !state.session;
    ui.end.disabled = closed || !state.session;
    if (closed) showSearching(false);
  }

  function handleEvent(ev) {
    if (!ev || typeof ev.seq !== "number") return;
    if (ev.seq > state.lastSeq) state.lastSeq = ev.seq;
    if (state.shown.has(ev.seq)) return;
    state.shown.add(ev.seq);
    saveSession();
    const text = typeof ev.text === "string" ? ev.text : "";
    switch (ev.type) {
      case "customer_message": {
        const mine = state.pending.get(ev.seq);   // sent from this page: already on screen
        if (mine) { state.pending.delete(ev.seq); return; }
        bubble("customer", "You", text, ev.at);
        return;
      }
      case "bot_message":
        bubble("bot", "Assistant", text, ev.at);
        return;
      case "searching":
        if (text) systemLine(text);
        showSearching(true);
        return;
      case "agent_joined":
        state.agent = ev.agent || null;
        showSearching(false);
        agentCard(state.agent, ev.at);
        setHeader(state.agent);
        return;
      case "agent_message":
        bubble("agent", agentName(ev.agent || state.agent), text, ev.at, ev.agent || state.agent);
        return;
      case "agent_left":
        systemLine(text || agentName(ev.agent || state.agent) + " left the chat.");
        state.agent = null;
        setHeader(null);
        return;
      case "no_agent_available":
        showSearching(false);
        systemLine(text || "Nobody is available right now.", "sys-warn");
        return;
      case "closed":
        systemLine(text || "The chat has ended.");
        setClosed(true);
        stopTransport();
        save("sessionStorage", STORE_SESSION, null);
        return;
      default:
        if (text) systemLine(text);
    }
  }

  // ---------- the API ----------

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.session) headers["Authorization"] = "Bearer " + state.session.token;
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, data, headers: response.headers };
  }

  function sessionPath(suffix) {
    return "/api/sessions/" + encodeURIComponent(state.session.session_id) + suffix;
  }

  function saveSession() {
    if (state.session) save("sessionStorage", STORE_SESSION, state.session);
  }

  async function openSession() {
    state.generation += 1;
    stopTransport();
    state.session = null;
    state.lastSeq = 0;
    state.shown.clear();
    state.pending.clear();
    state.agent = null;
    ui.log.replaceChildren();
    setHeader(null);
    setClosed(false);
    setConn("connecting", "Connecting…");
    for (;;) {
      const customerId = load("localStorage", STORE_CUSTOMER);
      let result;
      try {
        result = await api("POST", "/api/sessions", typeof customerId === "string" ? { customer_id: customerId } : {});
      } catch (e) {
        setConn("offline", "Offline, retrying…");
        await sleep(nextBackoffMs());
        continue;
      }
      if (result.status === 201 && result.data) {
        state.backoff = 0;
        state.session = result.data;
        save("localStorage", STORE_CUSTOMER, result.data.customer_id);
        saveSession();
        break;
      }
      if (result.status === 400 && customerId !== null) {
        save("localStorage", STORE_CUSTOMER, null);   // a stale or foreign id: start afresh
        continue;
      }
      setConn("offline", "Unavailable, retrying…");
      await sleep(nextBackoffMs());
    }
    setClosed(false);
    await showHistory();
    ui.text.focus();
    startTransport();
  }

  async function resumeOrOpen() {
    const stored = load("sessionStorage", STORE_SESSION);
    if (stored && stored.session_id && stored.token) {
      state.generation += 1;
      state.session = stored;
      try {
        const probe = await api("GET", sessionPath("/events?after=0&wait=0"));
        if (probe.status === 200 && probe.data && Array.isArray(probe.data.events)
            && !probe.data.events.some((e) => e.type === "closed")) {
          setClosed(false);
          await showHistory();
          probe.data.events.forEach(handleEvent);
          startTransport();
          return;
        }
      } catch (e) { /* fall through to a fresh session */ }
      save("sessionStorage", STORE_SESSION, null);
    }
    await openSession();
  }

  // ---------- receiving: WebSocket first, long-poll as the fallback ----------

  function stopTransport() {
    if (state.socket) {
      const s = state.socket;
      state.socket = null;
      s.onclose = s.onerror = s.onmessage = null;
      try { s.close(1000); } catch (e) { /* already closed */ }
    }
  }

  function startTransport() {
    if (state.closed || !state.session) return;
    if (state.mode === "ws" && "WebSocket" in window) connectSocket(state.generation);
    else pollLoop(state.generation);
  }

  async function sessionLost(generation) {
    // 401/404: the server no longer knows this session (restart, expiry): open a new one;
    // the remembered customer_id brings the history back.
    if (generation !== state.generation) return;
    save("sessionStorage", STORE_SESSION, null);
    await openSession();
  }

  function connectSocket(generation) {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + window.location.host + sessionPath("/ws") +
      "?token=" + encodeURIComponent(state.session.token) + "&after=" + state.lastSeq;
    let opened = false;
    let socket;
    try { socket = new WebSocket(url); } catch (e) { state.mode = "poll"; pollLoop(generation); return; }
    state.socket = socket;
    socket.onopen = () => {
      opened = true;
      state.wsFailures = 0;
      state.backoff = 0;
      setConn("online", "Connected");
    };
    socket.onmessage = (message) => {
      let ev = null;
      try { ev = JSON.parse(message.data); } catch (e) { return; }
      handleEvent(ev);
    };
    socket.onclose = async (close) => {
      if (state.socket !== socket || generation !== state.generation) return;
      state.socket = null;
      if (state.closed) return;
      if (close.code === 4401 || close.code === 4404) { await sessionLost(generation); return; }
      if (!opened) state.wsFailures += 1;
      setConn("offline", "Reconnecting…");
      if (state.wsFailures >= 2) {
        state.mode = "poll";           // sockets blocked on this network: long-poll instead
        pollLoop(generation);
        return;
      }
      await sleep(nextBackoffMs());
      if (generation === state.generation && !state.closed) connectSocket(generation);
    };
  }

  async function pollLoop(generation) {
    while (generation === state.generation && !state.closed) {
      let result;
      try {
        result = await api("GET", sessionPath("/events?after=" + state.lastSeq + "&wait=" + POLL_WAIT_S));
      } catch (e) {
        setConn("offline", "Reconnecting…");
        await sleep(nextBackoffMs());
        continue;
      }
      if (generation !== state.generation) return;
      if (result.status === 200 && result.data && Array.isArray(result.data.events)) {
        state.backoff = 0;
        setConn("online", "Connected");
        result.data.events.forEach(handleEvent);
      } else if (result.status === 401 || result.status === 404) {
        await sessionLost(generation);
        return;
      } else {
        setConn("offline", "Reconnecting…");
        await sleep(nextBackoffMs());
      }
    }
  }

  // ---------- sending ----------

  async function send(text) {
    const item = bubble("customer", "You", text);
    item.classList.add("sending");
    let result;
    try {
      result = await api("POST", sessionPath("/messages"), { text });
    } catch (e) {
      result = null;
    }
    if (result && result.status === 202 && result.data && typeof result.data.seq === "number") {
      const seq = result.data.seq;
      item.classList.remove("sending");
      if (state.shown.has(seq)) item.remove();   // its event came first and is on screen already
      else state.pending.set(seq, item);         // its event, when it comes, is not shown twice
      return true;
    }
    item.remove();
    const data = (result && result.data) || {};
    if (!result) notice("Not sent: you seem to be offline. Your text is back in the box.");
    else if (result.status === 429) {
      const after = Number(result.headers.get("Retry-After")) || 1;
      notice("You are sending messages too quickly. Please wait " + after + " s.");
    } else if (result.status === 413) notice("That message is too long.");
    else if (result.status === 409) { notice("This chat has ended."); setClosed(true); }
    else if (result.status === 401 || result.status === 404) {
      notice("The connection was reset. Please send your message again.");
      await sessionLost(state.generation);
    } else notice(typeof data.detail === "string" ? "Not sent: " + data.detail : "Not sent, please try again.");
    return false;
  }

  function updateCounter() {
    const max = state.config.max_text_chars || 4000;
    const used = ui.text.value.length;
    ui.counter.hidden = used < max * 0.8;
    ui.counter.textContent = used + " / " + max;
    ui.counter.classList.toggle("over", used > max);
    ui.text.style.height = "auto";
    ui.text.style.height = Math.min(ui.text.scrollHeight, 160) + "px";
  }

  ui.composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = ui.text.value;
    if (!text.trim() || state.closed || !state.session) return;
    if (text.length > (state.config.max_text_chars || 4000)) { notice("That message is too long."); return; }
    notice("");
    ui.text.value = "";
    updateCounter();
    const ok = await send(text);
    if (!ok && !ui.text.value) { ui.text.value = text; updateCounter(); }
  });

  ui.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.text.addEventListener("input", updateCounter);

  ui.end.addEventListener("click", async () => {
    if (!state.session || state.closed) return;
    try { await api("POST", sessionPath("/close")); } catch (e) { /* the closed event will not come */ }
    if (!state.closed) { systemLine("The chat has ended."); setClosed(true); stopTransport(); }
    save("sessionStorage", STORE_SESSION, null);
  });

  ui.newChat.addEventListener("click", () => { openSession(); });

  window.addEventListener("online", () => {
    state.backoff = 0;
    if (state.mode === "ws" && !state.socket && state.session && !state.closed) connectSocket(state.generation);
  });

  async function start() {
    try {
      const result = await api("GET", "/api/config");
      if (result.status === 200 && result.data) Object.assign(state.config, result.data);
    } catch (e) { /* defaults are fine */ }
    if (state.config.title) { ui.title.textContent = state.config.title; document.title = state.config.title; }
    ui.text.maxLength = (state.config.max_text_chars || 4000) + 1;
    await resumeOrOpen();
  }

  start();
})();
