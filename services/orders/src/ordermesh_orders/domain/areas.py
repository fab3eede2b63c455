"""Remote islands and relay areas of Japan by postal code prefix.

An approximation kept as tables (Izu and Ogasawara islands, Sado, Oki, Tsushima, Iki, Goto, Amami,
Tanegashima, Yakushima, Tokara, Koshikijima, Okinawa's outer islands), the Kagoshima and Goto prefixes checked
against Japan Post's data (891-0xxx and 891-1xxx are Kagoshima city on the mainland, 853-0xxx is Goto city);
carriers publish the exact lists, which can replace these tables.
"""

import unicodedata

REMOTE_ISLAND_PREFIXES: tuple[str, ...] = (
    "10001", "10002", "10003", "10004", "10005", "10006", "1001", "1002",  # Izu and Ogasawara islands (東京都島しょ部)
    "952",  # Sado
    "6843", "6844", "6850",  # Oki
    "8170", "8171", "8172", "8173",  # Tsushima
    "8115",  # Iki
    "8530", "8532", "8533", "8534", "8535", "8536", "8537", "8538",  # Goto (五島市, 新上五島町)
    "8913", "8914", "8915", "8916", "8917", "8918", "8919",  # Tanegashima, Yakushima, Tokara, Kikai, Tokunoshima, Okinoerabu, Yoron
    "8961",  # Koshikijima (薩摩川内市 甑島)
    "8941", "8942", "8943", "8944", "8945", "8946", "8947", "8948", "8949",  # Amami
    "906", "907",  # Miyako / Yaeyama
)


RELAY_AREAS: dict[str, str] = {
    "10001": "Izu Ōshima", "10002": "Izu Ōshima",  # 東京都大島町
    "10011": "Miyakejima", "10012": "Miyakejima",  # 東京都三宅島三宅村
    "10013": "Mikurajima",  # 東京都御蔵島村
    "10014": "Hachijōjima", "10015": "Hachijōjima", "10016": "Hachijōjima",  # 東京都八丈島八丈町
    "952": "Sado",  # 新潟県佐渡市
    "68401": "Oki islands", "68402": "Oki islands", "68403": "Oki islands", "68404": "Oki islands",  # 隠岐郡 (Dōzen)
    "6850": "Oki islands",  # 隠岐郡隠岐の島町
    "8170": "Tsushima", "8171": "Tsushima", "8172": "Tsushima",  # 長崎県対馬市
    "8530": "Gotō islands", "8532": "Gotō islands", "8533": "Gotō islands",  # 五島市, 新上五島町
    "894": "Amami islands",  # 奄美市 and 大島郡 on Amami Ōshima
}
"""Relay areas (中継地域): places the carriers reach only through a partner, for a surcharge and extra days.

The areas of the shipping service's carrier tables, with prefixes checked against Japan Post's data (e.g. 684-0xxx
is Sakaiminato on the mainland, and only 684-01xx to 684-04xx are the Oki islands)."""


def _digits(postal_code: str) -> str:
    return unicodedata.normalize("NFKC", postal_code).replace("-", "").strip()


def is_remote_island(postal_code: str) -> bool:
    """Whether a Japanese postal code lies on a remote island (longer delivery, shipping fee check)."""
    return _digits(postal_code).startswith(REMOTE_ISLAND_PREFIXES)


def relay_area(postal_code: str) -> str | None:
    """The relay area a Japanese postal code lies in (the carrier's surcharge applies), or None."""
    digits = _digits(postal_code)
    for length in range(len(digits), 0, -1):
        if area := RELAY_AREAS.get(digits[:length]):
            return area
    return None
