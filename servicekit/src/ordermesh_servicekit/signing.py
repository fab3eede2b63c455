"""HMAC-SHA256 signing of webhook bodies in the `t=<unix seconds>,v1=<hex>` header format."""

import hashlib
import hmac


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(
        secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256
    ).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Return the `X-Ordermesh-Signature` header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify_signature(
    secret: str, body: bytes, header: str, *, now: int, tolerance_s: int = 300
) -> bool:
    """Check a signature header against `body`; False if malformed, stale or not matching.

    Several `v1=` entries are accepted (any one matching suffices) so that a
    sender can sign with an old and a new secret while the secret is rotated.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            # ASCII digits only: str.isdigit() also passes '²' and '٣', which int() then refuses or reads
            if timestamp is not None or not value.isascii() or not value.isdigit() or len(value) > 12:
                return False
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, body, timestamp)
    # Compare against every candidate so the time taken does not depend on which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode("ascii"), candidate.encode("ascii", "replace"))
    return matched
