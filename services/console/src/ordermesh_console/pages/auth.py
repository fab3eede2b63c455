"""Logging in and out, and choosing the language."""

import asyncio
import hmac
from datetime import timedelta

from ordermesh_servicekit.http_input import query_text
from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..domain import i18n
from ..domain.passwords import dummy_hash, verify_password
from .common import (
    LANGUAGE_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Refused,
    console_of,
    current_session,
    checked_form,
    new_token,
    read_form,
    redirect,
    render,
    safe_next,
)


async def login_page(request: Request) -> Response:
    """GET /login: the login form, with a login CSRF token (double-submitted: cookie and field)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not (20 <= len(token) <= 100 and token.replace("-", "").replace("_", "").isalnum()):
        token = new_token()
    next_url = safe_next(query_text(request, "next", max_length=2000))
    response = render(request, "login.html", None, login_csrf=token, next=next_url, failed=False)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=console_of(request).secure_cookies)
    return response


async def login(request: Request) -> Response:
    """POST /login: checks the password with scrypt, starts a session, sets its cookie."""
    console = console_of(request)
    form = await read_form(request, max_fields=10)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(str(form.get("csrf") or "").encode(), cookie.encode()):
        raise Refused(403, "the login form's CSRF token is missing or wrong; reload the page and try again")
    username, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
    if len(username) > 128 or len(password) > 1024:
        raise Refused(400, "user name or password: too long")
    async with console.pool.acquire() as conn:
        found = await store.password_hash_of(conn, username)
    stored = found[1] if found else dummy_hash()
    matches = await asyncio.to_thread(verify_password, password, stored)
    next_url = safe_next(str(form.get("next") or ""))
    if not (found and matches):
        return render(request, "login.html", None, status=401, login_csrf=cookie, next=next_url, failed=True, username=username)
    token = new_token()
    async with console.pool.acquire() as conn:
        await store.start_session(conn, token, username, new_token(), timedelta(hours=console.session_hours))
    response = redirect(next_url)
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=console.secure_cookies,
        max_age=int(console.session_hours * 3600),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


async def logout(request: Request) -> Response:
    """POST /logout (CSRF-checked): ends the session."""
    session = await current_session(request)
    if session is not None:
        await checked_form(request, session)
        async with console_of(request).pool.acquire() as conn:
            await store.end_session(conn, request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


async def choose_language(request: Request) -> Response:
    """GET /language?to=en&next=/orders: remembers the language in a cookie and goes back."""
    language = query_text(request, "to", max_length=8)
    response = redirect(safe_next(query_text(request, "next", max_length=2000)))
    if language in i18n.LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, samesite="lax", max_age=365 * 24 * 3600)
    return response
