"""Staff accounts (admins only): list, add with a role, change a role, deactivate, set a new password."""

import asyncio

from ordermesh_servicekit.http_input import checked_text
from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..domain.passwords import PasswordPolicyError, check_policy, hash_password
from ..domain.roles import Permission, Role
from .common import Refused, checked_form, console_of, redirect, render, require


async def account_list(request: Request) -> Response:
    """GET /accounts"""
    session = await require(request, Permission.ADMINISTER)
    async with console_of(request).pool.acquire() as conn:
        accounts = await store.accounts(conn)
    return render(request, "accounts.html", session, accounts=accounts)


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise Refused(400, f"role must be one of {[r.value for r in Role]}") from None


async def create_account(request: Request) -> Response:
    """POST /accounts: username, display name, role, password (at least 10 characters)."""
    session = await require(request, Permission.ADMINISTER)
    form = await checked_form(request, session)
    username = str(form.get("username") or "").strip()
    if not (1 <= len(username) <= 64) or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise Refused(400, "username: 1 to 64 letters, digits, '-', '_' or '.'")
    password = str(form.get("password") or "")
    try:
        check_policy(password)
    except PasswordPolicyError as error:
        raise Refused(400, str(error)) from error
    password_hash = await asyncio.to_thread(hash_password, password)
    async with console_of(request).pool.acquire() as conn:
        created = await store.create_account(
            conn, username, str(form.get("display_name") or username)[:128], _role(form.get("role")), password_hash,
            session.account.username,
        )
    if not created:
        raise Refused(409, f"an account {username!r} exists already")
    return redirect("/accounts")


async def change_account(request: Request) -> Response:
    """POST /accounts/{username}: a new role, active or not, a new password — whichever is given."""
    session = await require(request, Permission.ADMINISTER)
    form = await checked_form(request, session)
    username = checked_text(request.path_params["username"], "username", max_length=64)
    if username == session.account.username and (form.get("active") == "no" or form.get("role") not in (None, "", "admin")):
        raise Refused(400, "you can't take away your own admin role or deactivate yourself")
    password_hash = None
    if form.get("password"):
        try:
            check_policy(str(form.get("password")))
        except PasswordPolicyError as error:
            raise Refused(400, str(error)) from error
        password_hash = await asyncio.to_thread(hash_password, str(form.get("password")))
    active = {"yes": True, "no": False}.get(str(form.get("active") or ""))
    role = _role(form.get("role")) if form.get("role") else None
    async with console_of(request).pool.acquire() as conn:
        if not await store.update_account(conn, username, role=role, active=active, password_hash=password_hash):
            raise Refused(404, f"no account {username!r}")
    return redirect("/accounts")
