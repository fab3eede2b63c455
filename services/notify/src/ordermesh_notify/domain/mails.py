"""Which mails go out, and their subject and text from the shop's templates."""

from dataclasses import dataclass
from typing import Any

import jinja2

from ordermesh_contracts import MailKind

SUBJECTS = {
    MailKind.ORDER_CONFIRMATION: "【ご注文確認】ご注文番号 {external_order_no}",
    MailKind.SHIPPED: "【発送のお知らせ】ご注文番号 {external_order_no}",
}
TRACKING_URLS = {
    "yamato": "https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number00=1&number01={tracking_number}",
    "sagawa": "https://k2k.sagawa-exp.co.jp/p/web/okurijosearch.do?okurijoNo={tracking_number}",
    "japanpost": "https://trackings.post.japanpost.jp/services/srv/search/direct?reqCodeNo1={tracking_number}",
}
DEFAULT_SIGNATURE = "ordermesh demo shop"


@dataclass(frozen=True)
class RenderedMail:
    """A mail ready to send."""

    subject: str
    text: str


def tracking_url(carrier: str, tracking_number: str) -> str | None:
    """The carrier's tracking page for a parcel, if ordermesh knows the carrier."""
    template = TRACKING_URLS.get(carrier)
    return template.format(tracking_number=tracking_number) if template else None


def render_mail(templates: jinja2.Environment, kind: MailKind, variables: dict[str, Any]) -> RenderedMail:
    """Renders a mail kind; a missing template variable raises `jinja2.UndefinedError`."""
    text = templates.get_template(f"ja/{kind.value}.txt.j2").render(signature=DEFAULT_SIGNATURE, **variables)
    return RenderedMail(SUBJECTS[kind].format(**variables), text)


def default_templates() -> jinja2.Environment:
    """The templates shipped with the service; undefined variables are errors, not blanks."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ordermesh_notify", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
