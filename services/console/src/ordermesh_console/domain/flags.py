"""How state flags are shown at a glance (as TEMPOSTAR does): a short name, a value label and a tone per value."""

from dataclasses import dataclass

FLAG_NAMES: dict[str, tuple[str, str]] = {
    "customer": ("顧客", "Customer"),
    "address": ("住所", "Address"),
    "delivery_date": ("配送日", "Delivery date"),
    "card_authorization": ("与信", "Card auth"),
    "credit_check": ("後払審査", "Credit check"),
    "prepaid_payment": ("入金", "Prepaid"),
    "cod_collection": ("代引回収", "COD"),
    "capture": ("売上確定", "Capture"),
    "points_redemption": ("ポイント利用", "Points used"),
    "allocation": ("引当", "Allocation"),
    "shipping": ("出荷", "Shipping"),
    "points": ("ポイント", "Points"),
    "mail_order_confirmation": ("受注メール", "Order mail"),
    "mail_shipped": ("出荷メール", "Shipped mail"),
    "mail_payment_instructions": ("支払案内メール", "Payment mail"),
    "mail_payment_received": ("入金確認メール", "Paid mail"),
    "mail_preparing_shipment": ("出荷準備メール", "Preparing mail"),
    "mail_points_confirmed": ("ポイントメール", "Points mail"),
    "mail_order_cancelled": ("取消メール", "Cancel mail"),
    "mail_order_changed": ("変更メール", "Change mail"),
    "label_check": ("送り状", "Label"),
    "delivery": ("配達", "Delivery"),
    "refund": ("返金", "Refund"),
    "balance": ("差額", "Balance"),
    "amount_change": ("金額変更", "Amount change"),
    "authorization_expiry": ("与信期限", "Auth expiry"),
    "payment_cancellation": ("決済取消", "Payment cancel"),
    "shipping_cancellation": ("出荷取消", "Shipping cancel"),
    "stock_release": ("在庫戻し", "Stock release"),
    "shipment_request": ("出荷依頼", "Shipment request"),
    "shipping_edit": ("出荷変更", "Shipping edit"),
    "points_debt": ("ポイント負債", "Points debt"),
}
"""Flags in the order they are shown; flags not named here follow, by name."""

VALUE_LABELS: dict[str, tuple[str, str]] = {
    "ok": ("OK", "ok"), "confirmed": ("確認済", "confirmed"), "normal": ("通常", "normal"),
    "watch_listed": ("要注意", "watch-listed"), "error": ("エラー", "error"), "pending": ("保留", "pending"),
    "not_applicable": ("対象外", "n/a"), "none": ("未", "none"), "not_yet": ("未", "not yet"),
    "authorized": ("与信済", "authorized"), "cancelled": ("取消", "cancelled"), "done": ("済", "done"),
    "requested": ("依頼済", "requested"), "received": ("入金済", "received"), "overdue": ("期限切れ", "overdue"),
    "under_paid": ("不足", "under-paid"), "collected": ("回収済", "collected"), "reserved": ("確保済", "reserved"),
    "failed": ("失敗", "failed"), "full": ("引当済", "allocated"), "partial": ("一部", "partial"),
    "unshipped": ("未出荷", "unshipped"), "shipped": ("出荷済", "shipped"), "partly_shipped": ("一部出荷", "partly shipped"),
    "provisional": ("仮付与", "provisional"), "reversed": ("取消済", "reversed"), "unsent": ("未送信", "unsent"),
    "sent": ("送信済", "sent"), "delivered": ("配達済", "delivered"), "owed": ("要返金", "owed"), "due": ("請求", "due"),
    "changed": ("変更済", "changed"), "soon": ("間近", "soon"), "released": ("戻し済", "released"),
    "applied": ("反映済", "applied"), "refused": ("拒否", "refused"), "relay_area": ("中継地", "relay area"),
}

_GOOD = {"ok", "confirmed", "normal", "authorized", "done", "received", "collected", "reserved", "full", "shipped",
         "confirmed", "sent", "delivered", "changed", "released", "applied"}
_BAD = {"error", "failed", "watch_listed", "overdue", "under_paid", "refused", "owed", "due", "soon", "relay_area"}
_OFF = {"not_applicable"}


@dataclass(frozen=True)
class FlagBadge:
    """One flag as shown: its short name, its value's label and a tone (good, wait, bad, off)."""

    name: str
    label: str
    value: str
    value_label: str
    tone: str


def tone(value: str) -> str:
    """good, wait, bad or off: the colour a flag value is shown in."""
    if value in _GOOD:
        return "good"
    if value in _BAD:
        return "bad"
    if value in _OFF:
        return "off"
    return "wait"


def badges(flags: dict[str, str], language: str = "ja") -> list[FlagBadge]:
    """Every flag of an order as a badge, in the usual order; unknown flags and values are shown by their name."""
    index = 0 if language == "ja" else 1
    ordered = [n for n in FLAG_NAMES if n in flags] + sorted(n for n in flags if n not in FLAG_NAMES)
    shown = []
    for name in ordered:
        value = str(flags[name])
        label = FLAG_NAMES.get(name, (name, name))[index]
        value_label = VALUE_LABELS.get(value, (value, value))[index]
        shown.append(FlagBadge(name, label, value, value_label, tone(value)))
    return shown
