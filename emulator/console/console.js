// The agent console: plays one agent of the emulated workspace in a browser tab.
// Talks to the emulator like Slack's own client would: the Web API with the agent's user token for
// what users can do through the API (post, set presence), /_emu/ routes for what only Slack's UI
// can do (click a button, run a slash command). Everything user-supplied is rendered as text nodes.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { app: null, users: [], channels: [], agent: null, channel: null, version: 0 };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  return response.json();
}

async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return response.json();
}

async function api(method, body) {
  const response = await fetch(`/api/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.agent.token}` },
    body: JSON.stringify(body),
  });
  return response.json();
}

// ---- names -----------------------------------------------------------------------------------

function userName(id) {
  if (state.app && id === state.app.bot_user_id) return state.app.app_name;
  const user = state.users.find((u) => u.id === id);
  return user ? user.name : id;
}

function channelLabel(channel) {
  if (channel.is_im) {
    const other = channel.members.find((m) => m !== state.agent.id) || state.agent.id;
    return userName(other);
  }
  return (channel.is_private ? "🔒 " : "# ") + channel.name + (channel.is_archived ? " (archived)" : "");
}

// ---- mrkdwn ----------------------------------------------------------------------------------

function unescape(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function pad(n) { return String(n).padStart(2, "0"); }

function formatDate(epoch, format, fallback) {
  const date = new Date(epoch * 1000);
  if (Number.isNaN(date.getTime())) return fallback;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  const tokens = {
    "{time}": time,
    "{time_secs}": `${time}:${pad(date.getSeconds())}`,
    "{date_num}": `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`,
    "{date}": date.toLocaleDateString(undefined, { month: "long", day: "numeric", year: "numeric" }),
    "{date_short}": date.toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" }),
    "{date_long}": date.toLocaleDateString(undefined, { weekday: "long", month: "long", day: "numeric", year: "numeric" }),
    "{date_pretty}": date.toLocaleDateString(),
    "{date_short_pretty}": date.toLocaleDateString(),
    "{date_long_pretty}": date.toLocaleDateString(),
  };
  let known = true;
  const out = format.replace(/\{[a-z_]+\}/g, (token) => {
    if (token in tokens) return tokens[token];
    known = false;
    return token;
  });
  return known ? out : fallback;
}

function special(inner) {
  const [target, label] = inner.split("|", 2);
  if (target.startsWith("@")) return el("span", { class: "mention" }, "@" + (label || userName(target.slice(1))));
  if (target.startsWith("#")) return el("span", { class: "mention" }, "#" + (label || target.slice(1)));
  if (target.startsWith("!date^")) {
    const [, epoch, format] = target.split("^");
    return el("time", { title: label || "" }, formatDate(Number(epoch), format || "", unescape(label || "")));
  }
  if (target.startsWith("!")) return el("span", { class: "mention" }, "@" + target.slice(1).split("^")[0]);
  if (/^https?:\/\//.test(target)) {
    return el("a", { href: target, target: "_blank", rel: "noopener noreferrer" }, unescape(label || target));
  }
  return unescape(inner);
}

function inline(text) {
  const parts = [];
  const pattern = /(\*[^*\n]+\*|_[^_\n]+_|~[^~\n]+~|`[^`\n]+`)/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) parts.push(unescape(text.slice(last, match.index)));
    const body = unescape(match[0].slice(1, -1));
    const tag = { "*": "strong", _: "em", "~": "s", "`": "code" }[match[0][0]];
    parts.push(el(tag, {}, body));
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(unescape(text.slice(last)));
  return parts;
}

function mrkdwn(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(/<([^<>]+)>/g)) {
    parts.push(...inline(text.slice(last, match.index)));
    parts.push(special(match[1]));
    last = match.index + match[0].length;
  }
  parts.push(...inline(text.slice(last)));
  return el("span", { class: "text" }, parts);
}

function textObject(object) {
  if (!object || typeof object.text !== "string") return null;
  return object.type === "mrkdwn" ? mrkdwn(object.text) : el("span", { class: "text" }, object.text);
}

// ---- blocks ----------------------------------------------------------------------------------

function element(item, message) {
  if (item && item.type === "button") {
    const style = item.style === "primary" || item.style === "danger" ? ` ${item.style}` : "";
    return el("button", {
      type: "button", class: `btn${style}`, "data-action-id": item.action_id || "",
      onclick: (event) => click(event.currentTarget, message, item.action_id),
    }, item.text && item.text.text ? item.text.text : item.action_id);
  }
  if (item && item.type === "image") return el("span", { class: "context" }, `[${item.alt_text || "image"}]`);
  if (item && (item.type === "mrkdwn" || item.type === "plain_text")) return textObject(item);
  return el("span", { class: "context" }, `[${item && item.type ? item.type : "element"}]`);
}

function richText(node) {
  if (!node || typeof node !== "object") return "";
  if (typeof node.text === "string") return node.text;
  if (node.type === "user") return "@" + userName(node.user_id);
  return (node.elements || []).map(richText).join("");
}

function block(item, message) {
  const kind = item && item.type;
  if (kind === "header") return el("div", { class: "block" }, el("h3", {}, item.text ? item.text.text : ""));
  if (kind === "divider") return el("hr");
  if (kind === "section") {
    return el("div", { class: "block section" },
      textObject(item.text),
      item.fields ? el("div", { class: "fields" }, item.fields.map(textObject)) : null,
      item.accessory ? el("div", { class: "actions" }, element(item.accessory, message)) : null);
  }
  if (kind === "actions") {
    return el("div", { class: "block actions" }, (item.elements || []).map((e) => element(e, message)));
  }
  if (kind === "context") {
    return el("div", { class: "block context" }, (item.elements || []).map((e) => element(e, message)));
  }
  if (kind === "image") return el("div", { class: "block context" }, `[${item.alt_text || "image"}]`);
  if (kind === "rich_text") return el("div", { class: "block text" }, richText(item));
  return el("div", { class: "block context" }, `[${kind || "block"}]`);
}

function messageItem(message) {
  const when = new Date(Number(message.ts) * 1000);
  const author = message.username || userName(message.user);
  const badges = [];
  if (message.bot_id) badges.push(el("span", { class: "badge" }, "APP"));
  if (message.pinned) badges.push(el("span", { class: "badge pin" }, "📌 Pinned"));
  if (message.edited) badges.push(el("span", { class: "badge" }, "edited"));
  if (message.ephemeral) badges.push(el("span", { class: "badge" }, "Only visible to you"));
  const body = Array.isArray(message.blocks) && message.blocks.length
    ? message.blocks.map((b) => block(b, message))
    : [mrkdwn(message.text || "")];
  return el("li", { class: message.ephemeral ? "ephemeral" : "", "data-ts": message.ts },
    el("div", { class: "meta" }, el("span", { class: "author" }, author),
      el("time", {}, when.toLocaleTimeString()), badges),
    body);
}

// ---- actions ---------------------------------------------------------------------------------

async function click(button, message, actionId) {
  button.disabled = true;
  try {
    const result = await postJSON("/_emu/click", {
      user: state.agent.id, channel: state.channel, ts: message.ts, action_id: actionId,
    });
    status(result.ok ? `Clicked ${actionId}: the app was told.` : `Click refused: ${result.error}`, !result.ok);
  } catch (error) {
    status(`Click failed: ${error}`, true);
  } finally {
    button.disabled = false;
  }
}

async function send(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text || !state.channel) return;
  let result;
  if (text.startsWith("/")) {
    const [command, ...rest] = text.split(/\s+/);
    result = await postJSON("/_emu/command", {
      user: state.agent.id, channel: state.channel, command, text: rest.join(" "),
    });
    if (result.ok) status(`Ran ${command}.`);
  } else {
    result = await api("chat.postMessage", { channel: state.channel, text });
  }
  // Clear the box only if it still holds what was sent: what was typed meanwhile stays.
  if (result.ok) {
    if ($("text").value.trim() === text) $("text").value = "";
  } else status(`Refused: ${result.error}`, true);
}

async function togglePresence() {
  const away = state.agent.presence === "active";
  const result = await api("users.setPresence", { presence: away ? "away" : "auto" });
  if (!result.ok) status(`Refused: ${result.error}`, true);
  await refresh();
}

async function addAgent(event) {
  event.preventDefault();
  const name = event.target.elements.name.value.trim();
  const result = await postJSON("/_emu/users", { name });
  if (!result.ok) return status(`Cannot add ${name}: ${result.error}`, true);
  event.target.reset();
  await refresh();
  selectAgent(result.id);
}

// ---- rendering -------------------------------------------------------------------------------

function selectAgent(id) {
  state.agent = state.users.find((u) => u.id === id) || state.users[0] || null;
  if (state.agent) localStorage.setItem("emu-agent", state.agent.name);
  state.channel = null;
  render();
}

function renderAgents() {
  const select = $("agent");
  select.replaceChildren(...state.users.map((u) =>
    el("option", { value: u.id }, `${u.name}${u.real_name && u.real_name !== u.name ? ` (${u.real_name})` : ""}`)));
  if (state.agent) select.value = state.agent.id;
  const active = state.agent && state.agent.presence === "active";
  $("presence").className = `presence${active ? " active" : ""}`;
  $("presence-label").textContent = state.agent ? (active ? "Active" : "Away") : "…";
}

function renderSidebar() {
  const mine = state.channels.filter((c) => state.agent && c.members.includes(state.agent.id));
  const item = (c) => el("li", {}, el("button", {
    type: "button", "data-channel": c.id,
    class: [c.id === state.channel ? "selected" : "", c.is_archived ? "archived" : ""].join(" ").trim(),
    onclick: () => { state.channel = c.id; render(); },
  }, channelLabel(c)));
  $("dms").replaceChildren(...mine.filter((c) => c.is_im || c.is_mpim).map(item));
  const rooms = mine.filter((c) => !c.is_im && !c.is_mpim);
  rooms.sort((a, b) => Number(a.is_archived) - Number(b.is_archived) || b.created - a.created);
  $("rooms").replaceChildren(...rooms.map(item));
}

async function renderMessages() {
  const channel = state.channels.find((c) => c.id === state.channel);
  $("title").textContent = channel ? channelLabel(channel) : "Pick a conversation";
  if (!channel || !state.agent) return $("messages").replaceChildren();
  const query = new URLSearchParams({ channel: channel.id, user: state.agent.id });
  const { messages = [] } = await getJSON(`/_emu/messages?${query}`);
  const list = $("messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  list.replaceChildren(...messages.map(messageItem));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function render() {
  renderAgents();
  renderSidebar();
  renderMessages();
}

async function refresh() {
  const [app, users, channels] = await Promise.all([
    getJSON("/_emu/app"), getJSON("/_emu/users"), getJSON("/_emu/channels"),
  ]);
  state.app = app;
  state.users = users.users;
  state.channels = channels.channels;
  const agentId = state.agent ? state.agent.id : null;
  state.agent = state.users.find((u) => u.id === agentId) || state.agent;
  render();
}

async function follow() {
  for (;;) {
    try {
      const { version } = await getJSON(`/_emu/changes?since=${state.version}&wait=25`);
      if (version !== state.version) {
        state.version = version;
        await refresh();
      }
    } catch (error) {
      status("Lost the emulator; retrying…", true);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

async function start() {
  $("agent").addEventListener("change", (event) => selectAgent(event.target.value));
  $("presence").addEventListener("click", togglePresence);
  $("composer").addEventListener("submit", send);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) send(event);
  });
  $("add-agent").addEventListener("submit", addAgent);
  await refresh();
  const params = new URLSearchParams(location.search);
  const wanted = params.get("agent") || localStorage.getItem("emu-agent");
  const agent = state.users.find((u) => u.name === wanted || u.id === wanted);
  selectAgent(agent ? agent.id : state.users[0] && state.users[0].id);
  if (params.get("channel")) state.channel = params.get("channel");
  render();
  follow();
}

start();
