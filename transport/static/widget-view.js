// The widget's view: everything that touches the page. No network, no state of the conversation.
//
// Every text goes in with textContent, never as markup: what a customer or an agent types is
// shown as typed. Avatar URLs are used only when they are http(s).

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function clockTime(at) {
  const d = typeof at === "number" ? new Date(at * 1000) : new Date();
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function humanDuration(seconds) {
  // An upper bound, so round up: 135 s is "3 minutes", not "2 minutes".
  if (!seconds || seconds <= 0) return "";
  if (seconds < 90) return Math.ceil(seconds) + " seconds";
  return Math.ceil(seconds / 60) + " minutes";
}

export function safeUrl(url) {
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

export function agentName(agent) {
  return (agent && (agent.display_name || agent.real_name)) || "An agent";
}

function avatar(agent, className) {
  const box = el("div", "avatar " + (className || ""));
  box.setAttribute("aria-hidden", "true");
  box.appendChild(el("span", "initials", agent ? initials(agent.display_name || agent.real_name) : "AI"));
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

// The page's elements and what can be done to them.
export class View {
  constructor(doc) {
    const $ = (id) => doc.getElementById(id);
    this.log = $("log");
    this.text = $("text");
    this.send = $("send");
    this.composer = $("composer");
    this.notice = $("notice");
    this.counter = $("counter");
    this.conn = $("conn");
    this.end = $("end-chat");
    this.searching = $("searching");
    this.searchingSub = $("searching-sub");
    this.closedBox = $("closed-box");
    this.newChat = $("new-chat");
    this.title = $("chat-title");
    this.whoSub = $("who-sub");
    this.whoAvatar = $("who-avatar");
    this.defaultTitle = "Support";
  }

  clear() { this.log.replaceChildren(); }

  scrollToEnd() { this.log.scrollTop = this.log.scrollHeight; }

  showNotice(text) {
    this.notice.textContent = text || "";
    this.notice.hidden = !text;
  }

  setConn(stateName, label) {
    this.conn.dataset.state = stateName;
    this.conn.textContent = label;
  }

  bubble(kind, who, text, at, agent) {
    const item = el("li", "msg msg-" + kind);
    if (kind !== "customer") {
      item.appendChild(avatar(kind === "agent" ? agent : null, kind === "bot" ? "avatar-bot" : ""));
    }
    const body = el("div", "msg-body");
    const meta = el("p", "msg-meta");
    meta.appendChild(el("span", "msg-who", who));
    meta.appendChild(el("time", "msg-time", clockTime(at)));
    body.appendChild(meta);
    body.appendChild(el("p", "msg-text", text));
    item.appendChild(body);
    this.log.appendChild(item);
    this.scrollToEnd();
    return item;
  }

  systemLine(text, extraClass) {
    const item = el("li", "sys " + (extraClass || ""));
    item.appendChild(el("p", "sys-text", text));
    this.log.appendChild(item);
    this.scrollToEnd();
    return item;
  }

  agentCard(agent, at) {
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
    this.log.appendChild(item);
    this.scrollToEnd();
  }

  // A returning customer's earlier sessions, muted, above this conversation.
  history(lines) {
    if (!lines.length) return;
    this.systemLine("Earlier conversation", "divider");
    for (const line of lines) {
      const text = typeof line.text === "string" ? line.text : "";
      let item;
      if (line.speaker === "customer") item = this.bubble("customer", "You", text, line.at);
      else if (line.speaker === "agent") {
        item = this.bubble("agent", line.name || "Agent", text, line.at, { display_name: line.name });
      } else item = this.bubble("bot", "Assistant", text, line.at);
      item.classList.add("msg-history");
    }
    this.systemLine("New conversation", "divider");
  }

  setHeader(agent) {
    const fresh = avatar(agent, agent ? "" : "avatar-bot");
    fresh.id = "who-avatar";
    this.whoAvatar.replaceWith(fresh);
    this.whoAvatar = fresh;
    this.title.textContent = agent ? agentName(agent) : this.defaultTitle;
    this.whoSub.textContent = agent ? agent.title || "Support agent" : "Assistant";
  }

  showSearching(on, maxWaitS) {
    this.searching.hidden = !on;
    if (on) {
      const wait = humanDuration(maxWaitS);
      this.searchingSub.textContent = wait
        ? "This can take up to " + wait + ". You can keep writing meanwhile."
        : "You can keep writing meanwhile.";
    }
  }

  setClosed(closed, hasSession) {
    this.closedBox.hidden = !closed;
    const off = closed || !hasSession;
    this.text.disabled = off;
    this.send.disabled = off;
    this.end.disabled = off;
    if (closed) this.showSearching(false);
  }

  updateCounter(maxChars) {
    const used = this.text.value.length;
    this.counter.hidden = used < maxChars * 0.8;
    this.counter.textContent = used + " / " + maxChars;
    this.counter.classList.toggle("over", used > maxChars);
    this.text.style.height = "auto";
    this.text.style.height = Math.min(this.text.scrollHeight, 160) + "px";
  }
}
