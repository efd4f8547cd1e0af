"""The customer API's error tree: every refusal the API can answer, with its status and code.

Owns: `ApiError` and its subclasses, one per status of the customer API contract, and
`error_body()`, the JSON body `{"error": code, "detail": text}` every refusal is answered with.

```
ApiError                      status  error code(s)
├── Malformed                 400     malformed_json, invalid_field, missing_text, empty_text, ...
├── Unauthorized              401     missing_token, bad_token
├── NotFound                  404     unknown_session, not_found
├── SessionClosedError        409     session_closed
├── TooLarge                  413     body_too_large, text_too_long
├── RateLimited               429     rate_limited (with Retry-After)
└── Unavailable               503     unavailable, shutting_down (with Retry-After)
```
Handlers raise these; one exception handler in `chat_api` turns them into responses, so a
refusal always has the same shape whatever route produced it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

__all__ = [
    "ApiError",
    "Malformed",
    "NotFound",
    "RateLimited",
    "SessionClosedError",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "error_body",
]


class ApiError(Exception):
    """A refusal: an HTTP status, a short machine-readable code and a sentence for people."""

    status: ClassVar[int] = 500

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    def headers(self) -> dict[str, str]:
        return {}


class Malformed(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="chat"'}


class NotFound(ApiError):
    status = 404


class SessionClosedError(ApiError):
    status = 409


class TooLarge(ApiError):
    status = 413


class _RetryLater(ApiError):
    def __init__(self, code: str, detail: str, *, retry_after: float) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        # Retry-After is whole seconds; never 0, or a client would retry at once.
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class RateLimited(_RetryLater):
    status = 429


class Unavailable(_RetryLater):
    status = 503


def error_body(code: str, detail: str) -> dict[str, Any]:
    return {"error": code, "detail": detail}
