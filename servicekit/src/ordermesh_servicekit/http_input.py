"""Reading untrusted HTTP input: bounded bodies, JSON that can't hurt, query parameters and bearer tokens.

Every helper raises `HttpRefusal` for bad input; `asgi_endpoint` answers it as a 4xx with a JSON reason, so an
endpoint reads its input in a few lines and never turns a hostile request into a 500.
"""

import hmac
import json
import math
import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a JSON body may have (a Shopify order needs about 8)."""

MAX_QUERY_TEXT = 256
"""Longest text query parameter (ids, skus, statuses are all far shorter)."""

_SURROGATE = re.compile("[\ud800-\udfff]")


class HttpRefusal(Exception):
    """A request refused for what it is: answered with `status` and `{"error": ..., "reason": ...}`."""

    def __init__(self, status: int, error: str, reason: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers
        self.extra = extra

    def response(self) -> JSONResponse:
        """The JSON answer."""
        return JSONResponse(
            {"error": self.error, "reason": self.reason, **self.extra}, status_code=self.status, headers=self.headers
        )


class BodyTooLarge(HttpRefusal):
    """The body is longer than the service accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"the body must not exceed {limit} bytes", limit=limit)


def limit_body(app: ASGIApp, max_bytes: int) -> ASGIApp:
    """Wraps an ASGI app so that its body can't exceed `max_bytes`: a larger Content-Length is answered 413 at once,
    and a body that turns out larger while it streams in raises `BodyTooLarge` from `receive` (no more is read)."""

    async def bounded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared[:20]) > max_bytes:
            await BodyTooLarge(max_bytes).response()(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        await app(scope, limited_receive, send)

    return bounded


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decodes a UTF-8 JSON body, refusing (400) what would break or poison the code behind: invalid UTF-8, nesting
    deeper than `max_depth`, integers too long to convert, NaN and infinities, NUL characters and lone surrogates
    (PostgreSQL and Kafka consumers refuse both)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HttpRefusal(400, "invalid_body", f"the body is not UTF-8 (byte {error.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise HttpRefusal(400, "invalid_body", f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as error:
        raise HttpRefusal(400, "invalid_body", f"not JSON: {str(error)[:200]}") from None
    _check_tree(value, max_depth)
    return value


def parse_json_object(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """`parse_json` for a body that must be a JSON object."""
    value = parse_json(body, max_depth=max_depth)
    if not isinstance(value, dict):
        raise HttpRefusal(400, "invalid_body", f"the body must be a JSON object, not {_json_type(value)}")
    return value


def parse_json_array(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> list[Any]:
    """`parse_json` for a body that must be a JSON array."""
    value = parse_json(body, max_depth=max_depth)
    if not isinstance(value, list):
        raise HttpRefusal(400, "invalid_body", f"the body must be a JSON array, not {_json_type(value)}")
    return value


def validation_reasons(error: ValidationError) -> list[str]:
    """A pydantic error as short reasons (`field.path: message`), without echoing the input."""
    return [
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"[:300]
        for e in error.errors(include_input=False, include_url=False)
    ][:20]


def invalid_fields(error: ValidationError, what: str = "invalid_body") -> HttpRefusal:
    """A 422 refusal for a body whose fields break the contract (amounts out of range, wrong types, missing fields)."""
    reasons = validation_reasons(error)
    return HttpRefusal(422, what, "; ".join(reasons)[:1000], reasons=reasons)


def checked_text(value: str, what: str, *, max_length: int = MAX_QUERY_TEXT) -> str:
    """`value` if it holds no NUL, no lone surrogate and at most `max_length` characters; else a 400."""
    if len(value) > max_length:
        raise HttpRefusal(400, "invalid_input", f"{what} must not exceed {max_length} characters")
    if "\x00" in value:
        raise HttpRefusal(400, "invalid_input", f"{what} must not contain NUL characters")
    if _SURROGATE.search(value):
        raise HttpRefusal(400, "invalid_input", f"{what} must not contain lone surrogates")
    return value


def query_text(request: Request, name: str, *, required: bool = False, max_length: int = MAX_QUERY_TEXT) -> str | None:
    """A text query parameter given at most once; None when absent or empty (400 when `required`)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise HttpRefusal(400, "invalid_query", f"{name} is given {len(values)} times; give it once")
    if not values or values[0] == "":
        if required:
            raise HttpRefusal(400, "invalid_query", f"{name} is required")
        return None
    return checked_text(values[0], name, max_length=max_length)


def query_int(request: Request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """A whole-number query parameter between `minimum` and `maximum` (ASCII digits only), else a 400."""
    value = query_text(request, name, max_length=64)
    if value is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,18}", value) or not minimum <= int(value) <= maximum:
        raise HttpRefusal(400, "invalid_query", f"{name} must be a whole number between {minimum} and {maximum}")
    return int(value)


def query_uuid(request: Request, name: str, *, required: bool = True) -> UUID | None:
    """A UUID query parameter (400 when malformed, or missing and `required`)."""
    value = query_text(request, name, required=required, max_length=64)
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise HttpRefusal(400, "invalid_query", f"{name} must be a UUID") from None


def query_date(request: Request, name: str) -> date | None:
    """An ISO date query parameter (YYYY-MM-DD), or None when absent."""
    value = query_text(request, name, max_length=10)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HttpRefusal(400, "invalid_query", f"{name} must be a date (YYYY-MM-DD)") from None


def header_text(request: Request, name: str, *, max_length: int = MAX_QUERY_TEXT) -> str:
    """A header's value given at most once ("" when absent), checked like `checked_text`."""
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise HttpRefusal(400, "invalid_header", f"{name} is given {len(values)} times; give it once")
    return checked_text(values[0], name, max_length=max_length) if values else ""


def require_bearer(request: Request, token: str) -> None:
    """Refuses (401) unless the request carries `Authorization: Bearer <token>` (an empty `token` refuses every call).
    The token is compared in constant time; a bare token without the scheme is refused."""
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not supplied:
        raise HttpRefusal(401, "unauthorized", "an Authorization: Bearer <token> header is required")
    if not token or not hmac.compare_digest(supplied.strip().encode("utf-8", "replace"), token.encode("utf-8")):
        raise HttpRefusal(401, "unauthorized", "the bearer token is not valid")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _check_tree(value: Any, max_depth: int) -> None:
    """Walks the decoded JSON without recursion: depth, finite numbers, clean strings (keys included)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise HttpRefusal(400, "invalid_body", f"JSON nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_string(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_string(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise HttpRefusal(400, "invalid_body", "a number in the body is too large")


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise HttpRefusal(400, "invalid_body", "the body must not contain NUL characters")
    if _SURROGATE.search(text):
        raise HttpRefusal(400, "invalid_body", "the body must not contain lone surrogates")
