"""Errors of the product, translated to RFC 9457 problem details at the web edge.

::

    DialerError
    ├── NotFound                 404  an object does not exist
    ├── Conflict                 409  the request contradicts the current state
    │   └── IllegalTransition    409  a status machine refuses the change
    ├── ValidationFailed         422  input is wrong (names the field and the reason)
    ├── NotAuthenticated         401
    ├── PermissionDenied         403
    └── TooManyAttempts          429  login throttling

Each error carries its text in English (logs, the CLI) and, for the web edge, a message id with its parameters:
``code``/``params`` of the error itself (its ``detail``) and of each entry of ``errors``. Without an explicit id
the web edge recognises the English text by the message catalogue's English templates
(``web/locales/messages.en.json``), so the answer is translated either way (``api/problems.py``).
"""

from __future__ import annotations

from typing import Any


class DialerError(Exception):
    status: int = 500
    title: str = "Internal error"
    type_slug: str = "internal"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, code: str | None = None,
                 params: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        #: Message id of ``detail`` (``problem.<code>`` in the catalogues) and its parameters, when known.
        self.code = code
        self.params = params or {}


class NotFound(DialerError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(DialerError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class IllegalTransition(Conflict):
    title = "Illegal status transition"
    type_slug = "illegal-transition"


class ValidationFailed(DialerError):
    status = 422
    title = "Validation failed"
    type_slug = "validation"

    @classmethod
    def field(cls, field: str, reason: str, *, code: str | None = None, **params: Any) -> ValidationFailed:
        """A validation error about one named field; ``code`` and ``params`` name the message when given."""
        item: dict[str, Any] = {"field": field, "reason": reason}
        if code is not None:
            item |= {"code": code, "params": params}
        return cls(f"{field}: {reason}", errors=[item])


class NotAuthenticated(DialerError):
    status = 401
    title = "Not authenticated"
    type_slug = "not-authenticated"


class PermissionDenied(DialerError):
    status = 403
    title = "Permission denied"
    type_slug = "permission-denied"


class TooManyAttempts(DialerError):
    status = 429
    title = "Too many attempts"
    type_slug = "too-many-attempts"

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        #: Sent as ``Retry-After``: when trying again can succeed.
        self.retry_after_s = max(1, retry_after_s)
