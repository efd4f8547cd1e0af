// The "leave your question" form the widget shows when nobody is available or the team is
// closed. It posts to POST /api/sessions/{id}/lead; the server answers the customer with a
// bot_message saying when to expect an answer, which arrives as an ordinary event.
//
// Every text is set with textContent (see widget-view.js); the form is plain DOM, no markup.
import { el } from "./widget-view.js";

const EMAIL = /^[^\s@<>|,;:"()[\]\\]+@[^\s@<>|,;:"()[\]\\]+\.[^\s@<>|,;:"()[\]\\]{2,}$/u;

let formNumber = 0;

function field(form, label, control, id) {
  const row = el("div", "lead-row");
  const text = el("label", "lead-label", label);
  text.htmlFor = id;
  control.id = id;
  row.append(text, control);
  form.appendChild(row);
  return control;
}

// A form in its own log item. `send({email, name?, question})` resolves to {ok: true} or
// {ok: false, message, field?} (see `leadResult`); `onGone()` is called once the lead is in or
// the customer said no thanks.
export function leadForm({ question, send, onGone }) {
  formNumber += 1;
  const n = formNumber;
  const item = el("li", "sys lead");
  const form = el("form", "lead-form");
  form.noValidate = true;   // our own messages, read out through the status line
  form.setAttribute("aria-labelledby", "lead-title-" + n);
  const title = el("p", "lead-title", "Leave your question and we will email you the answer");
  title.id = "lead-title-" + n;
  form.appendChild(title);

  const email = el("input");
  email.type = "email";
  email.name = "email";
  email.autocomplete = "email";
  email.required = true;
  email.maxLength = 254;
  field(form, "Email", email, "lead-email-" + n);

  const name = el("input");
  name.type = "text";
  name.name = "name";
  name.autocomplete = "name";
  name.maxLength = 200;
  field(form, "Name (optional)", name, "lead-name-" + n);

  const text = el("textarea");
  text.name = "question";
  text.rows = 3;
  text.required = true;
  text.value = question || "";
  field(form, "Your question", text, "lead-question-" + n);

  const status = el("p", "lead-status");
  status.setAttribute("role", "alert");
  status.hidden = true;
  const actions = el("div", "lead-actions");
  const submit = el("button", "lead-send", "Send");
  submit.type = "submit";
  const dismiss = el("button", "lead-dismiss", "No thanks");
  dismiss.type = "button";
  actions.append(submit, dismiss);
  form.append(status, actions);
  item.appendChild(form);

  function say(message, control) {
    status.textContent = message || "";
    status.hidden = !message;
    for (const c of [email, text]) c.removeAttribute("aria-invalid");
    if (control) {
      control.setAttribute("aria-invalid", "true");
      control.focus();
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const lead = { email: email.value.trim(), name: name.value.trim(), question: text.value.trim() };
    if (!EMAIL.test(lead.email)) { say("Please enter an email address like name@example.com.", email); return; }
    if (!lead.question) { say("Please write your question.", text); return; }
    if (!lead.name) delete lead.name;
    submit.disabled = true;
    say("");
    const result = await send(lead);
    submit.disabled = false;
    if (!result.ok) {
      say(result.message, result.field === "question" ? text : result.field === "email" ? email : null);
      return;
    }
    item.className = "sys";
    item.replaceChildren(el("p", "sys-text", "Thanks, your question has been sent."));
    if (onGone) onGone();
  });
  dismiss.addEventListener("click", () => {
    item.remove();
    if (onGone) onGone();
  });

  return { item, focus: () => email.focus(), remove: () => item.remove() };
}

// The server's answer to a lead, as the form shows it.
export function leadResult(result) {
  if (!result) return { ok: false, message: "Not sent: you seem to be offline. Please try again." };
  if (result.status === 201) return { ok: true };
  const detail = result.data && typeof result.data.detail === "string" ? result.data.detail : "";
  switch (result.status) {
    case 400:
      if (detail.startsWith("email") || detail.includes('"email"')) return { ok: false, field: "email", message: "Please check your email address." };
      if (detail.startsWith("question") || detail.includes('"question"')) {
        return { ok: false, field: "question", message: "Please write your question." };
      }
      return { ok: false, message: detail ? "Not sent: " + detail : "Not sent, please check the form." };
    case 413: return { ok: false, field: "question", message: "Your question is too long." };
    case 409: return { ok: false, message: "This chat has ended." };
    case 429: {
      if (result.data && result.data.error === "too_many_leads") {
        return { ok: false, message: "We already have your questions from this chat." };
      }
      const after = Number(result.headers.get("Retry-After")) || 1;
      return { ok: false, message: "Please wait " + after + " s and send again." };
    }
    default: return { ok: false, message: "Not sent, please try again." };
  }
}
