"""What every page shares: the console's live parts, the logged-in staff member, CSRF-checked forms, rendering."""

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
from jinja2 import Environment
from ordermesh_servicekit.http_input import HttpRefusal, checked_text
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .. import store
from ..adapters.commands import CommandSender
from ..adapters.kafka_views import KafkaViews
from ..adapters.services import ServiceReader
from ..domain import flags, formatting, i18n
from ..domain.roles import Permission, Role, allows

SESSION_COOKIE = "om_session"
LOGIN_CSRF_COOKIE = "om_login_csrf"
LANGUAGE_COOKIE = "om_lang"
MAX_FORM_FIELDS = 12_000
MAX_FIELD_NAME = 200
MAX_FIELD_TEXT = 150_000
"""Longest form value: a mail template's HTML part (100 000 characters) with room to spare."""
MAX_BODY_BYTES = 2_000_000


@dataclass
class Console:
    """The console's live parts, made at start-up."""

    pool: asyncpg.Pool
    reader: ServiceReader
    sender: CommandSender
    templates: Environment
    timezone: str
    secure_cookies: bool
    session_hours: float
    connection: Any = None
    """The ops package's Connection (Kafka with its security, the services' URLs, the token) for its dead-letter tools."""
    kafka_views: KafkaViews | None = None
    """Pending dead letters and consumer lag, read from Kafka and kept a few seconds."""


class LoginRequired(Exception):
    """No live session: the page answers with a redirect to the login page."""


class Refused(Exception):
    """The request can't be served; `status` and `reasons` say why (shown on an error page)."""

    def __init__(self, status: int, *reasons: str) -> None:
        super().__init__("; ".join(reasons))
        self.status = status
        self.reasons = list(reasons)


def console_of(request: Request) -> Console:
    """The console serving this request."""
    return request.app.state.console


def language_of(request: Request, session: store.Session | None = None) -> str:
    """The cookie's language, else the account's, else Japanese."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in i18n.LANGUAGES:
        return chosen
    return session.account.language if session else "ja"


async def current_session(request: Request) -> store.Session | None:
    """The live session of the request's cookie, if any."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    async with console_of(request).pool.acquire() as conn:
        return await store.session(conn, token)


async def require(request: Request, permission: Permission) -> store.Session:
    """The logged-in staff member, if their role allows `permission`; else LoginRequired or Refused(403)."""
    session = await current_session(request)
    if session is None:
        raise LoginRequired()
    if not allows(session.account.role, permission):
        t = i18n.translator(language_of(request, session))
        raise Refused(403, f"{t('forbidden')} ({i18n.label(i18n.ROLES, session.account.role.value, language_of(request, session))})")
    return session


async def read_form(request: Request, *, max_fields: int = MAX_FORM_FIELDS) -> FormData:
    """The posted form with every name and value checked (400 for NUL, lone surrogates, over-long text or a body that
    is not a form)."""
    try:
        await request.body()  # read through the body limit first, whatever the content type (413 when over it)
        form = await request.form(max_fields=max_fields, max_files=0)
    except HttpRefusal:
        raise
    except Exception as error:  # noqa: BLE001 - python-multipart raises several kinds for malformed bodies
        raise Refused(400, f"unreadable form: {type(error).__name__}") from error
    for key, value in form.multi_items():
        checked_text(key, "a field name", max_length=MAX_FIELD_NAME)
        if not isinstance(value, str):
            raise Refused(400, f"{key[:40]!r}: files are not accepted")
        checked_text(value, key[:40], max_length=MAX_FIELD_TEXT)
    return form


async def checked_form(request: Request, session: store.Session) -> FormData:
    """The posted form (checked by `read_form`), refused (403) without the session's CSRF token."""
    form = await read_form(request)
    supplied = str(form.get("csrf") or "")
    if not hmac.compare_digest(supplied.encode(), session.csrf_token.encode()):
        raise Refused(403, "the form's CSRF token is missing or wrong; reload the page and try again")
    return form


def render(request: Request, template: str, session: store.Session | None, status: int = 200, **context: Any) -> HTMLResponse:
    """Renders a page in the staff member's language, with what every page needs."""
    console = console_of(request)
    language = language_of(request, session)
    body = console.templates.get_template(template).render(
        request=request,
        session=session,
        account=session.account if session else None,
        csrf=session.csrf_token if session else "",
        lang=language,
        t=i18n.translator(language),
        stage_label=lambda v: i18n.label(i18n.STAGES, v, language),
        method_label=lambda v: i18n.label(i18n.PAYMENT_METHODS, v, language),
        channel_label=lambda v: i18n.label(i18n.CHANNELS, v, language),
        role_label=lambda v: i18n.label(i18n.ROLES, v, language),
        badges=lambda f: flags.badges(f or {}, language),
        money=formatting.money,
        when=lambda v, seconds=False: formatting.local_time(v, console.timezone, seconds=seconds),
        day=formatting.local_day,
        can=lambda p: bool(session and allows(session.account.role, Permission[p])),
        roles=[r.value for r in Role],
        **context,
    )
    # Text read from Kafka may hold lone surrogates (a dead letter's payload): shown as their escapes, not a 500.
    return HTMLResponse(body.encode("utf-8", "backslashreplace"), status_code=status)


def redirect(url: str) -> RedirectResponse:
    """303 See Other: after a POST, the browser GETs the page."""
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str:
    """A local path to go back to after login (never another site)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/orders"


def login_redirect(request: Request) -> Response:
    """To the login page, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/login?next={quote(target, safe='')}")


def new_token() -> str:
    """A random token for sessions and CSRF."""
    return secrets.token_urlsafe(32)
