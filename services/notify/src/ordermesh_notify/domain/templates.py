"""Mail templates: the defaults shipped per language, a shop's own ones, rendering, and the check made when one is saved."""

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib.resources import files
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from ordermesh_contracts import MINOR_UNITS, MailKind

LANGUAGES = ("ja", "en")


@dataclass(frozen=True)
class MailTemplate:
    """Jinja2 sources of one mail: subject, text part and (optional) HTML part; `source` names where it came from."""

    subject: str
    text: str
    html: str | None
    source: str


@dataclass(frozen=True)
class RenderedMail:
    """A mail ready to send: subject, text part, HTML part, and the template it came from."""

    subject: str
    text: str
    html: str
    template: str


class TemplateProblem(Exception):
    """A template could not be rendered: a syntax error, an unknown variable, or a forbidden operation."""


def format_amount(minor: int, currency: str = "JPY") -> str:
    """An amount in minor units as customers read it: thousands separated, the currency's decimals (3,500 for
    3500 JPY; 1,234.50 for 123450 USD)."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"amount must be a whole number of minor units, not {type(minor).__name__}")
    digits = MINOR_UNITS.get(currency, 2)
    return f"{Decimal(minor).scaleb(-digits):,.{digits}f}"


@jinja2.pass_context
def _amount(context: jinja2.runtime.Context, minor: int) -> str:
    if isinstance(minor, jinja2.Undefined):
        str(minor)  # raises UndefinedError naming the variable, like any other use of it
    return format_amount(minor, context.get("currency") or "JPY")


@jinja2.pass_eval_context
def _urlize(eval_ctx: jinja2.nodes.EvalContext, value: Any, *args: Any, **kwargs: Any) -> Any:
    # Jinja's urlize only ever links a word holding a "." (a domain, an address) or "://" (a bracketed IPv6 host);
    # the layouts run it on every line of every mail, most of which hold neither, and for those it only escapes.
    text = str(value)
    if "." in text or "://" in text:
        return _jinja_urlize(eval_ctx, value, *args, **kwargs)
    return escape(value) if eval_ctx.autoescape else str(escape(value))


_jinja_urlize = jinja2.filters.do_urlize


def _environment(autoescape: bool) -> SandboxedEnvironment:
    # Sandboxed: shops write these templates; undefined variables are errors, not blanks. The package's own templates
    # never change while the service runs, so they are not checked for changes at every use.
    environment = SandboxedEnvironment(
        loader=jinja2.PackageLoader("ordermesh_notify", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    environment.filters["amount"] = _amount  # {{ total|amount }} → 3,500 (in the order's currency)
    environment.filters["urlize"] = _urlize
    return environment


class MailRenderer:
    """Renders mails from templates; holds the package's default templates and the HTML layouts per device."""

    def __init__(self, cached_templates: int = 256) -> None:
        self._text = _environment(autoescape=False)
        self._html = _environment(autoescape=True)
        # Compiling is most of a render's cost; a compiled template stays bound to its sandboxed environment.
        self._compiled_text = lru_cache(maxsize=cached_templates)(self._text.from_string)
        self._compiled_html = lru_cache(maxsize=cached_templates)(self._html.from_string)
        root = files("ordermesh_notify") / "templates"
        self._subjects = {lang: tomllib.loads((root / lang / "subjects.toml").read_text("utf-8")) for lang in LANGUAGES}
        self._defaults = {
            (lang, kind): MailTemplate(
                subject=self._subjects[lang][kind.value],
                text=(root / lang / f"{kind.value}.txt.j2").read_text("utf-8"),
                html=None,
                source=f"default:{lang}",
            )
            for lang in LANGUAGES
            for kind in MailKind
        }

    def default_template(self, language: str, kind: MailKind) -> MailTemplate:
        """The template shipped with the service for a language and mail kind."""
        return self._defaults[(language if language in LANGUAGES else "ja", kind)]

    def render(
        self,
        template: MailTemplate,
        variables: dict[str, Any],
        *,
        device: str,
        language: str,
        signature: str,
        inserted_text: str | None = None,
    ) -> RenderedMail:
        """Renders subject, text and HTML; the per-order text and the shop's signature are added to both parts.

        Without an HTML template the HTML part is the text part in the device's layout (links made clickable).
        Raises `TemplateProblem` with a readable reason.
        """
        try:
            subject = " ".join(self._compiled_text(template.subject).render(variables).split())
            body = self._compiled_text(template.text).render(variables).rstrip("\n")
            text = "\n\n".join(part for part in (body, (inserted_text or "").strip(), signature.strip()) if part) + "\n"
            if template.html is None:
                layout = self._html.get_template(f"_layout.{'mobile' if device == 'mobile' else 'pc'}.html.j2")
                html = layout.render(text=text.rstrip("\n"), subject=subject, language=language)
            else:
                html = _append_html(
                    self._compiled_html(template.html).render(variables), inserted_text, signature
                )
        except jinja2.TemplateSyntaxError as error:
            raise TemplateProblem(f"template syntax error on line {error.lineno}: {error.message}") from None
        except jinja2.UndefinedError as error:
            raise TemplateProblem(f"template variable missing: {error.message}") from None
        except jinja2.TemplateError as error:
            raise TemplateProblem(f"template error: {error}") from None
        except (TypeError, ValueError, AttributeError, ArithmeticError) as error:
            raise TemplateProblem(f"template error: {type(error).__name__}: {error}") from None
        return RenderedMail(subject, text, html, template.source)

    def problems(self, template: MailTemplate, kind: MailKind) -> list[str]:
        """Why a shop's template cannot be used for `kind` (rendered against sample variables); empty if it can."""
        found = []
        for device in ("pc", "mobile"):
            try:
                self.render(template, sample_variables(kind), device=device, language="ja", signature="")
            except TemplateProblem as problem:
                found.append(str(problem))
        return list(dict.fromkeys(found))


def _append_html(html: str, inserted_text: str | None, signature: str) -> str:
    extra = "".join(
        f'<p class="{css}">' + str(escape(part.strip())).replace("\n", "<br>") + "</p>"
        for css, part in (("inserted-text", inserted_text or ""), ("signature", signature))
        if part.strip()
    )
    if not extra:
        return html
    position = html.lower().rfind("</body>")
    return html[:position] + extra + html[position:] if position >= 0 else html + extra


BASE_SAMPLE: dict[str, Any] = {
    "customer_name": "山田 花子",
    "external_order_no": "RK-20250312-000481",
    "shop_id": "kyoto-tea",
    "device": "pc",
    "currency": "JPY",
    "lines": [
        {"sku": "MATCHA-UJI-40G", "name": "宇治抹茶 特上 40g", "quantity": 2, "unit_price": 2160, "amount": 4120,
         "tax_rate_percent": 8, "state": "ordered"},
    ],
    "deliveries": [
        {"name": "山田 花子", "postal_code": "604-8005", "prefecture": "京都府", "city": "京都市中京区", "line1": "河原町通1-1", "line2": ""},
    ],
    "total": 4670,
    "shipping_fee": 550,
    "payment_fee": 0,
    "order_discount": 0,
    "points_used": 0,
    "tax_breakdown": [{"rate_percent": 10, "subtotal": 550, "tax": 50}, {"rate_percent": 8, "subtotal": 4120, "tax": 305}],
    "payment_method": "card",
}
KIND_SAMPLES: dict[MailKind, dict[str, Any]] = {
    MailKind.ORDER_CONFIRMATION: {},
    MailKind.PAYMENT_INSTRUCTIONS: {
        "method": "bank_transfer", "reference": "PAY-7Q4K2M", "amount": 4670, "due_date": "2025-03-19",
        "pay_to": "京都中央銀行 本店営業部 普通 1234567 カ）キョウトチャホ", "cancels_when_overdue": True,
    },
    MailKind.PAYMENT_RECEIVED: {"method": "bank_transfer", "amount": 4670, "balance": 0},
    MailKind.PREPARING_SHIPMENT: {},
    MailKind.SHIPPED: {
        "carrier": "yamato",
        "carrier_name": "ヤマト運輸",
        "tracking_number": "482917346502",
        "tracking_url": "https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number00=1&number01=482917346502",
        "delivery_index": 0,
    },
    MailKind.POINTS_CONFIRMED: {"points": 46},
    MailKind.ORDER_CHANGED: {"changes": ["宇治抹茶 特上 40g: 3 → 2"], "previous_total": 6830, "balance": -2160},
    MailKind.ORDER_CANCELLED: {"reason": "お客様のご依頼によるキャンセル"},
    MailKind.MESSAGE_TO_CUSTOMER: {"message_subject": "ご連絡", "message": "お届け日についてご連絡いたします。"},
}


def sample_variables(kind: MailKind) -> dict[str, Any]:
    """The variables a template of `kind` may use, with sample values (a template is checked against these)."""
    return {**BASE_SAMPLE, **KIND_SAMPLES[kind]}


def variables_needed(kind: MailKind) -> frozenset[str]:
    """Variables of `kind` that come from the event that causes the mail (not from the order)."""
    return frozenset(KIND_SAMPLES[kind])
