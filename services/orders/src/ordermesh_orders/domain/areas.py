"""Remote islands and relay areas of Japan by postal code prefix.

An approximation kept as a table (Izu and Ogasawara islands, Sado, Oki, Tsushima, Iki, Goto, Amami,
Yakushima, Okinawa's outer islands); carriers publish the exact lists, which can replace this table.
"""

import unicodedata

REMOTE_ISLAND_PREFIXES: tuple[str, ...] = (
    "10001", "10002", "10003", "10004", "10005", "10006", "1001", "1002",  # Izu and Ogasawara islands (東京都島しょ部)
    "952",  # Sado
    "6843", "6844", "6850",  # Oki
    "8170", "8171", "8172", "8173",  # Tsushima
    "8115",  # Iki
    "8533", "8534", "8535", "8536", "8537", "8538",  # Goto
    "8910", "8911", "8914", "8916", "8917", "8918", "8919",  # Tokara / Amami / Yakushima area (鹿児島県島しょ部)
    "8941", "8942", "8943", "8944", "8945", "8946", "8947", "8948", "8949",  # Amami
    "906", "907",  # Miyako / Yaeyama
)


def is_remote_island(postal_code: str) -> bool:
    """Whether a Japanese postal code lies on a remote island (longer delivery, shipping fee check)."""
    digits = unicodedata.normalize("NFKC", postal_code).replace("-", "").strip()
    return digits.startswith(REMOTE_ISLAND_PREFIXES)
