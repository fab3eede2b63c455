"""Yamato B2 Cloud label data: the external-data CSV (cp932, CRLF, header row) written from shipments.

The columns follow the first 40 columns of B2 Cloud's standard import layout (お客様管理番号 … 発行枚数);
the remaining optional columns (notification mail, billing codes) are left off, which B2 accepts. お客様管理番号 is
at most 20 half-width alphanumerics in that layout ("半角英数字 20文字"): shipments carry a short label number for it.
"""

import csv
import io
from dataclasses import dataclass
from datetime import date

ENCODING = "cp932"
HEADER = (
    "お客様管理番号", "送り状種類", "クール区分", "伝票番号", "出荷予定日", "お届け予定日", "配達時間帯",
    "お届け先コード", "お届け先電話番号", "お届け先電話番号枝番", "お届け先郵便番号", "お届け先住所",
    "お届け先アパートマンション名", "お届け先会社・部門１", "お届け先会社・部門２", "お届け先名",
    "お届け先名(ｶﾅ)", "敬称", "ご依頼主コード", "ご依頼主電話番号", "ご依頼主電話番号枝番",
    "ご依頼主郵便番号", "ご依頼主住所", "ご依頼主アパートマンション", "ご依頼主名", "ご依頼主名(ｶﾅ)",
    "品名コード１", "品名１", "品名コード２", "品名２", "荷扱い１", "荷扱い２", "記事",
    "ｺﾚｸﾄ代金引換額（税込)", "内消費税額等", "止置き", "営業所コード", "発行枚数", "個数口表示フラグ",
    "請求先顧客コード",
)
MANAGEMENT_NUMBER_LENGTH = 20
SLIP_PREPAID = "0"
SLIP_COLLECT = "2"
COOL_CODES = {"normal": "0", "frozen": "1", "chilled": "2"}
TIME_SLOT_CODES = {"08-12": "0812", "14-16": "1416", "16-18": "1618", "18-20": "1820", "19-21": "1921"}


@dataclass(frozen=True)
class Party:
    """A consignee or shipper block (personal data)."""

    name: str
    phone: str
    postal_code: str
    address: str
    building: str = ""


@dataclass(frozen=True)
class B2Label:
    """One shipment as a B2 Cloud label."""

    management_number: str
    ship_date: date
    consignee: Party
    shipper: Party
    item_name: str
    cool_type: str = "normal"
    delivery_date: date | None = None
    time_slot: str | None = None
    cod_amount: int | None = None
    billing_customer_code: str = ""


class LabelEncodingError(ValueError):
    """Some label fields hold characters cp932 can't carry; `problems` names each (shipment, field, character)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _date(value: date | None) -> str:
    return value.strftime("%Y/%m/%d") if value else ""


def label_row(label: B2Label) -> list[str]:
    """The CSV fields of one label, in header order."""
    cod = label.cod_amount is not None
    return [
        label.management_number,
        SLIP_COLLECT if cod else SLIP_PREPAID,
        COOL_CODES[label.cool_type],
        "",
        _date(label.ship_date),
        _date(label.delivery_date),
        TIME_SLOT_CODES.get(label.time_slot or "", ""),
        "",
        label.consignee.phone,
        "",
        label.consignee.postal_code,
        label.consignee.address,
        label.consignee.building,
        "",
        "",
        label.consignee.name,
        "",
        "様",
        "",
        label.shipper.phone,
        "",
        label.shipper.postal_code,
        label.shipper.address,
        label.shipper.building,
        label.shipper.name,
        "",
        "",
        label.item_name,
        "",
        "",
        "",
        "",
        "",
        str(label.cod_amount) if cod else "",
        "",
        "0",
        "",
        "1",
        "",
        label.billing_customer_code,
    ]


def unencodable(label: B2Label) -> list[str]:
    """Every field of the label B2 Cloud can't take: a management number beyond its limit, a character cp932 can't
    carry (named with the character)."""
    problems = []
    number = label.management_number
    if not (number.isascii() and number.isalnum() and len(number) <= MANAGEMENT_NUMBER_LENGTH):
        problems.append(f"shipment {number}: お客様管理番号 must be at most {MANAGEMENT_NUMBER_LENGTH} half-width letters or digits")
    for name, value in zip(HEADER, label_row(label), strict=True):
        for char in value:
            try:
                char.encode(ENCODING)
            except UnicodeEncodeError:
                problems.append(f"shipment {label.management_number}: {name} has {char!r} (U+{ord(char):04X}), not in cp932")
                break
    return problems


def write_b2_csv(labels: list[B2Label]) -> bytes:
    """The B2 Cloud import file: header row plus one row per label, cp932, CRLF; refuses what cp932 can't carry."""
    problems = [problem for label in labels for problem in unencodable(label)]
    if problems:
        raise LabelEncodingError(problems)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    writer.writerows(label_row(label) for label in labels)
    return buffer.getvalue().encode(ENCODING)


COOL_ORDER = ("normal", "chilled", "frozen")
ITEM_NAME_LENGTH = 25


def strictest_cool_type(types: list[str]) -> str:
    """The cool type a parcel needs when its items need these (frozen over chilled over normal)."""
    return max(types, key=COOL_ORDER.index, default="normal")


def item_name(names: list[str]) -> str:
    """The label's item name: the first item, with 他 when there are more, shortened to fit."""
    first = names[0] if names else "商品"
    name = f"{first} 他" if len(names) > 1 else first
    return name if len(name) <= ITEM_NAME_LENGTH else name[: ITEM_NAME_LENGTH - 1] + "…"


def consignee_from(address: dict[str, str | None]) -> Party:
    """A consignee block from an order's delivery address."""
    return Party(
        name=address["name"] or "",
        phone=address.get("phone") or "",
        postal_code=address["postal_code"] or "",
        address=f"{address['prefecture']}{address['city']}{address['line1']}",
        building=address.get("line2") or "",
    )
