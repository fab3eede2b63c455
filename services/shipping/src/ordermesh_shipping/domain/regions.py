"""Japanese prefectures by carrier region, lead days between regions, and remote-island postal areas.

The numbers are an approximation of published next-day/two-day delivery maps of Japanese parcel
carriers (same region next day, neighbouring regions two days, Hokkaido and Okinawa three days from
the main islands), not any carrier's contractual table; shops with exact needs override them.
"""

REGIONS: dict[str, tuple[str, ...]] = {
    "hokkaido": ("北海道",),
    "tohoku": ("青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県"),
    "kanto": ("茨城県", "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "山梨県"),
    "shinetsu": ("新潟県", "長野県"),
    "hokuriku": ("富山県", "石川県", "福井県"),
    "chubu": ("岐阜県", "静岡県", "愛知県", "三重県"),
    "kansai": ("滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県"),
    "chugoku": ("鳥取県", "島根県", "岡山県", "広島県", "山口県"),
    "shikoku": ("徳島県", "香川県", "愛媛県", "高知県"),
    "kyushu": ("福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県"),
    "okinawa": ("沖縄県",),
}

REGION_OF: dict[str, str] = {prefecture: region for region, members in REGIONS.items() for prefecture in members}

NEIGHBOURS: dict[str, frozenset[str]] = {
    "hokkaido": frozenset({"tohoku"}),
    "tohoku": frozenset({"hokkaido", "kanto", "shinetsu"}),
    "kanto": frozenset({"tohoku", "shinetsu", "chubu", "hokuriku", "kansai"}),
    "shinetsu": frozenset({"tohoku", "kanto", "hokuriku", "chubu"}),
    "hokuriku": frozenset({"shinetsu", "chubu", "kansai", "kanto"}),
    "chubu": frozenset({"kanto", "shinetsu", "hokuriku", "kansai"}),
    "kansai": frozenset({"chubu", "hokuriku", "chugoku", "shikoku", "kanto"}),
    "chugoku": frozenset({"kansai", "shikoku", "kyushu"}),
    "shikoku": frozenset({"kansai", "chugoku", "kyushu"}),
    "kyushu": frozenset({"chugoku", "shikoku"}),
    "okinawa": frozenset(),
}

REMOTE_ISLAND_EXTRA_DAYS: dict[str, tuple[str, int]] = {
    "10001": ("Izu Ōshima", 1),
    "10002": ("Izu Ōshima", 1),
    "10011": ("Miyakejima", 2),
    "10012": ("Mikurajima", 2),
    "10014": ("Hachijōjima", 2),
    "10021": ("Ogasawara islands", 6),
    "9520": ("Sado", 1),
    "6840": ("Oki islands", 2),
    "8115": ("Iki", 1),
    "817": ("Tsushima", 1),
    "853": ("Gotō islands", 1),
    "894": ("Amami islands", 2),
    "8914": ("Tanegashima / Yakushima", 2),
    "9071": ("Ishigaki / Yaeyama", 1),
    "9065": ("Miyako islands", 1),
}
"""Postal-code prefix (digits only) → (area, extra days beyond the regional lead time)."""


def normalise_postal_code(postal_code: str) -> str:
    """The digits of a postal code, e.g. '100-2101' → '1002101'."""
    return "".join(ch for ch in postal_code if ch.isdigit())


def remote_island(postal_code: str) -> tuple[str, int] | None:
    """The remote-island area of a postal code and its extra days, or None (longest prefix wins)."""
    digits = normalise_postal_code(postal_code)
    for length in range(len(digits), 0, -1):
        if digits[:length] in REMOTE_ISLAND_EXTRA_DAYS:
            return REMOTE_ISLAND_EXTRA_DAYS[digits[:length]]
    return None


def lead_days(from_prefecture: str, to_prefecture: str) -> int | None:
    """Carrier days from one prefecture to another: 1 same region, 2 neighbouring, 3 otherwise; None if unknown."""
    origin, destination = REGION_OF.get(from_prefecture), REGION_OF.get(to_prefecture)
    if origin is None or destination is None:
        return None
    if origin == destination:
        return 1
    return 2 if destination in NEIGHBOURS[origin] else 3
