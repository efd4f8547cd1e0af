"""The customer API's lead routes: leaving contact details and a question, and listing leads.

Owns `lead_routes(...)`, added to the app by `build_chat_app`:

- `POST /api/sessions/{id}/lead` (the session's bearer token) with
  `{"email": str, "name"?: str, "question": str}` -> 201 with the lead. The widget offers it when
  nobody is available or the team is closed. Checks, in order: session (404), token (401), body
  size (413), body shape and fields (400 `missing_field` / `invalid_field`, 413 `text_too_long`
  for a question over `http.max_text_chars`), shutting down (503), rate (429 `rate_limited`,
  the same per-session budget as messages), then the domain: a bad email address is 400
  `invalid_field`, a closed session 409, more than the domain's leads per session 429
  `too_many_leads`. Leaving the same lead again (a retry) answers the same lead.
- `GET /api/leads` -> 200 `{"leads": [lead, ...]}`, oldest first. When `http.leads_token` is set
  it needs `Authorization: Bearer <leads_token>` (401 otherwise): leads hold customers' emails.

A lead on the wire: `{"id", "session_id", "customer_id", "name", "email", "question", "at"}`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from actors.leads import Lead, TooManyLeads
from actors.settings import HttpSettings
from transport.chat_errors import ApiError, Malformed, TooLarge, Unauthorized, Unavailable
from transport.chat_limits import SessionRateLimiter, read_body
from transport.chat_session import ChatSessions, bearer_token
from transport.chat_wire import parse_json_object

__all__ = ["LeadRequest", "decode_lead", "encode_lead", "lead_routes"]

DURABLE_DEADLINE_S = 30.0
MAX_EMAIL_CHARS = 320
MAX_NAME_CHARS = 200


class TooManyLeadsError(ApiError):
    status = 429


@dataclass(frozen=True, slots=True)
class LeadRequest:
    """A lead's fields as the customer sent them (trimmed; `name` None when not given)."""

    email: str
    name: str | None
    question: str


def _text(obj: Mapping[str, Any], field: str, *, required: bool) -> str | None:
    value = obj.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Malformed("missing_field", f'the body must have a non-empty "{field}"')
        return None
    if not isinstance(value, str):
        raise Malformed("invalid_field", f"{field} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed(
            "invalid_field", f"{field} holds characters that are not valid Unicode"
        ) from None
    return value.strip()


def decode_lead(obj: Mapping[str, Any], max_question_chars: int) -> LeadRequest:
    """Presence, types and lengths; the domain decides what an email address looks like."""
    email = _text(obj, "email", required=True)
    question = _text(obj, "question", required=True)
    name = _text(obj, "name", required=False)
    assert email is not None and question is not None
    if len(email) > MAX_EMAIL_CHARS:
        raise Malformed("invalid_field", f"email is longer than {MAX_EMAIL_CHARS} characters")
    if name is not None and len(name) > MAX_NAME_CHARS:
        raise Malformed("invalid_field", f"name is longer than {MAX_NAME_CHARS} characters")
    if len(question) > max_question_chars:
        raise TooLarge("text_too_long", f"question is longer than {max_question_chars} characters")
    return LeadRequest(email, name, question)


def encode_lead(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.lead_id,
        "session_id": lead.session_id,
        "customer_id": lead.customer_id,
        "name": lead.name,
        "email": lead.email,
        "question": lead.question,
        "at": lead.at,
    }


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def lead_routes(
    sessions: ChatSessions, http: HttpSettings, limiter: SessionRateLimiter
) -> list[Route]:
    """The two lead routes over `sessions.domain`, sharing the messages' rate `limiter`."""
    domain = sessions.domain

    async def leave_lead(request: Request) -> Response:
        session_id = sessions.authorize(request.path_params["session_id"], request.headers)
        try:
            body = await read_body(
                request.headers.get("content-length"), request.stream(), http.max_body_bytes
            )
        except ClientDisconnect:
            raise Malformed("client_disconnected", "the client went away") from None
        wanted = decode_lead(parse_json_object(body), http.max_text_chars)
        sessions.refuse_if_draining()
        limiter.check(session_id)
        with trio.move_on_after(DURABLE_DEADLINE_S):
            try:
                with sessions.domain_errors():
                    lead = await domain.leave_lead(
                        session_id, wanted.email, wanted.question, wanted.name
                    )
            except TooManyLeads as e:
                raise TooManyLeadsError("too_many_leads", str(e)) from None
            return _json(encode_lead(lead), 201)
        raise Unavailable(
            "unavailable", "the lead could not be stored in time; retry", retry_after=5
        )

    async def list_leads(request: Request) -> Response:
        if http.leads_token:
            token = bearer_token(request.headers) or ""
            if not hmac.compare_digest(token.encode(), http.leads_token.encode()):
                raise Unauthorized("bad_token", "GET /api/leads needs the leads token")
        return _json({"leads": [encode_lead(lead) for lead in domain.leads()]})

    handlers: list[tuple[str, Callable[[Request], Awaitable[Response]], str]] = [
        ("/api/sessions/{session_id}/lead", leave_lead, "POST"),
        ("/api/leads", list_leads, "GET"),
    ]
    return [Route(path, handler, methods=[method]) for path, handler, method in handlers]
