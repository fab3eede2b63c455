"""The shop's shipping fee table (issue 3 §8) and the fee it gives one delivery: a flat fee, a fee per prefecture
instead, free from a merchandise total, and a remote-island surcharge that applies even when shipping is free."""

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ordermesh_contracts import Address

from .areas import is_remote_island

PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県",
    "茨城県", "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県",
    "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県", "岐阜県", "静岡県", "愛知県",
    "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県",
    "徳島県", "香川県", "愛媛県", "高知県",
    "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)
"""The 47 prefectures of Japan, as written in addresses."""


def prefecture_name(text: str) -> str:
    """A prefecture as typed (full-width or half-width, stray spaces) in the form addresses and the table use."""
    return unicodedata.normalize("NFKC", text).strip()


@dataclass(frozen=True)
class FeeTable:
    """A shop's shipping fees, in minor units of the shop's currency."""

    fee: int
    by_prefecture: dict[str, int] = field(default_factory=dict)
    free_from: int | None = None
    remote_island_surcharge: int = 0

    def as_json(self) -> dict[str, Any]:
        """The table as stored and shown to staff."""
        return {"fee": self.fee, "by_prefecture": dict(self.by_prefecture), "free_from": self.free_from,
                "remote_island_surcharge": self.remote_island_surcharge}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FeeTable":
        """The table from its stored form."""
        return cls(fee=data["fee"], by_prefecture=dict(data.get("by_prefecture") or {}),
                   free_from=data.get("free_from"), remote_island_surcharge=data.get("remote_island_surcharge", 0))


def fee_table_refusals(by_prefecture: dict[str, int]) -> list[str]:
    """Why a table's prefecture fees can't be used (empty when they can): every unknown prefecture named, and every
    negative fee."""
    reasons = []
    unknown = [name for name in by_prefecture if prefecture_name(name) not in PREFECTURES]
    if unknown:
        reasons.append(f"unknown prefectures: {', '.join(unknown)} (use the full name, e.g. 北海道, 東京都, 沖縄県)")
    names = [prefecture_name(name) for name in by_prefecture]
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        reasons.append(f"prefectures given twice: {', '.join(repeated)}")
    reasons += [f"the fee for {name} is negative ({fee})" for name, fee in by_prefecture.items() if fee < 0]
    return reasons


def fee_table(fee: int, by_prefecture: dict[str, int], free_from: int | None, remote_island_surcharge: int) -> FeeTable:
    """A table from a command's values, prefecture names normalised; check `fee_table_refusals` first."""
    return FeeTable(
        fee=fee,
        by_prefecture={prefecture_name(name): amount for name, amount in by_prefecture.items()},
        free_from=free_from,
        remote_island_surcharge=remote_island_surcharge,
    )


def shipping_fee(table: FeeTable, address: Address, merchandise_total: int) -> int:
    """The fee for one delivery to `address` carrying `merchandise_total` (lines after their discounts): the
    prefecture's fee or the flat fee, nothing from `free_from` on, plus the remote-island surcharge in any case."""
    base = table.by_prefecture.get(prefecture_name(address.prefecture), table.fee)
    if table.free_from is not None and merchandise_total >= table.free_from:
        base = 0
    remote = address.country == "JP" and is_remote_island(address.postal_code)
    return base + (table.remote_island_surcharge if remote else 0)
