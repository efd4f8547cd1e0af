// The customer chat widget: talks to the customer API of this server (no build step, no library).
//
// - Opens a session (POST /api/sessions) with the customer_id remembered in localStorage, so a
//   returning customer keeps their history (shown from GET .../history); the live session is kept
//   in sessionStorage so a reload of the tab resumes it.
// - Receives events through `EventStream` (WebSocket, long-poll fallback, resume from the last
//   seq) and shows each seq once.
// - The page itself is `View`: every text is rendered as text.
import { EventStream, Api, Backoff, sleep } from "./widget-link.js";
import { View, agentName } from "./widget-view.js";
import { leadForm, leadResult } from "./widget-lead.js";

const STORE_CUSTOMER = "takeover.customer_id";
const STORE_SESSION = "takeover.session";

const view = new View(document);
const api = new Api();
const state = {
  config: { max_wait_s: 0, max_text_chars: 4000, title: "Support" },
  lastSeq: 0,
  shown: new Set(),     // seqs already on screen
  pending: new Map(),   // seq -> bubble of a message sent from this page
  agent: null,
  closed: false,
  stream: null,
  lead: null,           // the "leave your question" form, while it is on screen
  lastText: "",         // the customer's last message: the form's question to start with
};

// ---------- storage (private mode or a full store: the widget works without memory) ----------

function load(kind, key) {
  try { return JSON.parse(window[kind].getItem(key)); } catch (e) { return null; }
}

function save(kind, key, value) {
  try {
    if (value === null) window[kind].removeItem(key); else window[kind].setItem(key, JSON.stringify(value));
  } catch (e) { /* nothing to do */ }
}

// ---------- events ----------

function setClosed(closed) {
  state.closed = closed;
  view.setClosed(closed, api.session !== null);
}

function handleEvent(ev) {
  if (!ev || typeof ev.seq !== "number") return;
  if (ev.seq > state.lastSeq) state.lastSeq = ev.seq;
  if (state.shown.has(ev.seq)) return;
  state.shown.add(ev.seq);
  const text = typeof ev.text === "string" ? ev.text : "";
  const agent = ev.agent || state.agent;
  switch (ev.type) {
    case "customer_message":
      state.lastText = text;
      if (state.pending.delete(ev.seq)) return;   // sent from this page: already on screen
      view.bubble("customer", "You", text, ev.at);
      return;
    case "bot_message":
      view.bubble("bot", "Assistant", text, ev.at);
      return;
    case "searching":
      if (text) view.systemLine(text);
      view.showSearching(true, state.config.max_wait_s);
      return;
    case "agent_joined":
      dropLead();
      state.agent = ev.agent || null;
      view.showSearching(false);
      view.agentCard(state.agent, ev.at);
      view.setHeader(state.agent);
      return;
    case "agent_message":
      view.bubble("agent", agentName(agent), text, ev.at, agent);
      return;
    case "agent_left":
      view.systemLine(text || agentName(agent) + " left the chat.");
      state.agent = null;
      view.setHeader(null);
      return;
    case "no_agent_available":
      view.showSearching(false);
      view.systemLine(text || "Nobody is available right now.", "sys-warn");
      offerLead();
      return;
    case "closed":
      view.systemLine(text || "The chat has ended.");
      endSession();
      return;
    default:
      if (text) view.systemLine(text);
  }
}

// ---------- sessions ----------

// Nobody could help: offer to take the customer's email and question (POST .../lead).
function offerLead() {
  if (state.lead || state.closed || !api.session) return;
  const form = leadForm({
    question: state.lastText,
    send: async (lead) => {
      let result = null;
      try { result = await api.request("POST", api.sessionPath("/lead"), lead); } catch (e) { /* offline */ }
      if (result && result.status === 409) endSession();
      return leadResult(result);
    },
    onGone: () => { if (state.lead === form) state.lead = null; },
  });
  state.lead = form;
  view.log.appendChild(form.item);
  view.scrollToEnd();
}

function dropLead() {
  if (state.lead) state.lead.remove();
  state.lead = null;
}

function endSession() {
  dropLead();
  setClosed(true);
  if (state.stream) state.stream.stop();
  save("sessionStorage", STORE_SESSION, null);
}

function reset() {
  if (state.stream) state.stream.stop();
  state.stream = null;
  api.session = null;
  state.lastSeq = 0;
  state.shown.clear();
  state.pending.clear();
  state.agent = null;
  state.lead = null;
  state.lastText = "";
  view.clear();
  view.setHeader(null);
  setClosed(false);
}

async function showHistory() {
  try {
    const result = await api.request("GET", api.sessionPath("/history"));
    if (result.status === 200 && result.data && Array.isArray(result.data.lines)) {
      view.history(result.data.lines);
    }
  } catch (e) { /* history is a nicety */ }
}

function startStream(events) {
  const stream = new EventStream(api, () => state.lastSeq, {
    onEvent: handleEvent,
    onStatus: (name, label) => view.setConn(name, label),
    onLost: () => { if (state.stream === stream) openSession(); },
  });
  state.stream = stream;
  events.forEach(handleEvent);
  if (!state.closed) stream.start();
}

// A new session; the remembered customer_id brings a returning customer's history back.
// Concurrent callers (a lost stream and a refused send at once) share one opening.
let opening = null;
function openSession() {
  if (!opening) opening = openNewSession().finally(() => { opening = null; });
  return opening;
}

async function openNewSession() {
  reset();
  save("sessionStorage", STORE_SESSION, null);
  view.setConn("connecting", "Connecting…");
  const backoff = new Backoff();
  for (;;) {
    const customerId = load("localStorage", STORE_CUSTOMER);
    let result = null;
    try {
      result = await api.request(
        "POST", "/api/sessions", typeof customerId === "string" ? { customer_id: customerId } : {});
    } catch (e) { /* offline: retry below */ }
    if (result && result.status === 201 && result.data) {
      api.session = result.data;
      save("localStorage", STORE_CUSTOMER, result.data.customer_id);
      save("sessionStorage", STORE_SESSION, result.data);
      break;
    }
    if (result && result.status === 400 && customerId !== null) {
      save("localStorage", STORE_CUSTOMER, null);   // a stale or foreign id: start afresh
      continue;
    }
    view.setConn("offline", result ? "Unavailable, retrying…" : "Offline, retrying…");
    await sleep(backoff.next());
  }
  setClosed(false);
  await showHistory();
  view.text.focus();
  startStream([]);
}

// After a reload: the same session if the server still has it open, else a new one.
async function resumeOrOpen() {
  const stored = load("sessionStorage", STORE_SESSION);
  if (stored && stored.session_id && stored.token) {
    api.session = stored;
    try {
      const probe = await api.request("GET", api.sessionPath("/events?after=0&wait=0"));
      const events = probe.data && probe.data.events;
      if (probe.status === 200 && Array.isArray(events) && !events.some((e) => e.type === "closed")) {
        setClosed(false);
        await showHistory();
        startStream(events);
        return;
      }
    } catch (e) { /* fall through to a fresh session */ }
  }
  await openSession();
}

// ---------- sending ----------

const SEND_ERRORS = {
  413: "That message is too long.",
  409: "This chat has ended.",
};

async function send(text) {
  state.lastText = text;
  const item = view.bubble("customer", "You", text);
  item.classList.add("sending");
  let result = null;
  try { result = await api.request("POST", api.sessionPath("/messages"), { text }); } catch (e) { /* offline */ }
  if (result && result.status === 202 && result.data && typeof result.data.seq === "number") {
    const seq = result.data.seq;
    item.classList.remove("sending");
    if (state.shown.has(seq)) item.remove();   // its event came first and is on screen already
    else state.pending.set(seq, item);         // its event, when it comes, is not shown twice
    return true;
  }
  item.remove();
  if (!result) view.showNotice("Not sent: you seem to be offline. Your text is back in the box.");
  else if (result.status === 429) {
    const after = Number(result.headers.get("Retry-After")) || 1;
    view.showNotice("You are sending messages too quickly. Please wait " + after + " s.");
  } else if (SEND_ERRORS[result.status]) {
    view.showNotice(SEND_ERRORS[result.status]);
    if (result.status === 409) endSession();
  } else if (result.status === 401 || result.status === 404) {
    view.showNotice("The connection was reset. Please send your message again.");
    await openSession();
  } else {
    const detail = result.data && typeof result.data.detail === "string" ? result.data.detail : "";
    view.showNotice(detail ? "Not sent: " + detail : "Not sent, please try again.");
  }
  return false;
}

function maxChars() { return state.config.max_text_chars || 4000; }

view.composer.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = view.text.value;
  if (!text.trim() || state.closed || !api.session) return;
  if (text.length > maxChars()) { view.showNotice("That message is too long."); return; }
  view.showNotice("");
  view.text.value = "";
  view.updateCounter(maxChars());
  const ok = await send(text);
  if (!ok && !view.text.value) { view.text.value = text; view.updateCounter(maxChars()); }
});

view.text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    view.composer.requestSubmit();
  }
});
view.text.addEventListener("input", () => view.updateCounter(maxChars()));

view.end.addEventListener("click", async () => {
  if (!api.session || state.closed) return;
  try { await api.request("POST", api.sessionPath("/close")); } catch (e) { /* offline */ }
  if (!state.closed) { view.systemLine("The chat has ended."); endSession(); }
});

view.newChat.addEventListener("click", () => { openSession(); });
window.addEventListener("online", () => { if (state.stream) state.stream.nudge(); });

async function start() {
  try {
    const result = await api.request("GET", "/api/config");
    if (result.status === 200 && result.data) Object.assign(state.config, result.data);
  } catch (e) { /* defaults are fine */ }
  view.defaultTitle = state.config.title || "Support";
  view.title.textContent = view.defaultTitle;
  document.title = view.defaultTitle;
  view.text.maxLength = maxChars() + 1;
  await resumeOrOpen();
}

start();
