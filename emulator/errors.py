"""The emulator's one error type: a Slack error code, answered the way Slack answers it.

    SlackError(code)            a Web API refusal: HTTP 200 {"ok": false, "error": code}
      .status                   the HTTP status the /_emu/ routes use for the same refusal
      .extra                    fields Slack adds beside "error" (e.g. "needed", "errors")

Raised by the pure workspace rules and by argument parsing; turned into a response only at the
HTTP edge (`web_api` for /api/, `console_routes` for /_emu/).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SlackError"]

# HTTP statuses the /_emu/ routes use for the codes that can reach them; Web API calls always
# answer 200 with {"ok": false} as Slack does.
_ROUTE_STATUS = {
    "invalid_request": 400,
    "invalid_json": 400,
    "invalid_arguments": 400,
    "invalid_name": 400,
    "invalid_name_specials": 400,
    "invalid_name_maxlength": 400,
    "not_in_channel": 403,
    "is_archived": 409,
    "name_taken": 409,
    "user_not_found": 404,
    "channel_not_found": 404,
    "message_not_found": 404,
    "action_not_found": 404,
    "expired_url": 404,
    "view_not_found": 404,
}


class SlackError(Exception):
    """A refusal carrying Slack's error code; `str()` is the code."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra

    @property
    def status(self) -> int:
        return _ROUTE_STATUS.get(self.code, 400)

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, **self.extra}
