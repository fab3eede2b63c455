"""Password hashing with scrypt (a memory-hard KDF from the standard library), self-describing and constant-time checked."""

import base64
import functools
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_MAX_PASSWORD_BYTES = 1024


class PasswordPolicyError(ValueError):
    """The password is not acceptable; the message says why."""


def check_policy(password: str) -> None:
    """Refuses passwords staff should not have: shorter than 10 characters, too long, or with NUL characters."""
    if len(password) < 10:
        raise PasswordPolicyError("password must have at least 10 characters")
    if len(password.encode("utf-8", "surrogatepass")) > _MAX_PASSWORD_BYTES:
        raise PasswordPolicyError(f"password must be at most {_MAX_PASSWORD_BYTES} bytes")
    if "\x00" in password:
        raise PasswordPolicyError("password must not contain NUL characters")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (base64) of a password with a new random salt."""
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, _N, _R, _P)
    encode = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"scrypt${_N}${_R}${_P}${encode(salt)}${encode(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a stored hash (False for a malformed hash or an over-long password)."""
    if len(password.encode("utf-8", "surrogatepass")) > _MAX_PASSWORD_BYTES:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def dummy_hash() -> str:
    """Checked against when a login names no account, so an unknown name takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))
