"""Money as integer minor units with an ISO 4217 currency; never a float."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

MINOR_UNITS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CNY": 2,
    "TWD": 2,
    "HKD": 2,
    "AUD": 2,
    "CAD": 2,
    "SGD": 2,
}
"""The currencies ordermesh accepts, with the number of decimals of their minor unit."""

CurrencyCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 currency code, e.g. JPY (no decimals) or USD (cents).",
        examples=["JPY"],
    ),
]

MinorUnits = Annotated[
    int,
    # strict: 9660.0 or "9660" is refused, not quietly converted (money is never a float)
    Field(strict=True, description="An amount in the currency's minor unit (yen for JPY, cents for USD)."),
]


def is_known_currency(code: str) -> bool:
    """Whether ordermesh knows the currency and its minor unit."""
    return code in MINOR_UNITS


class Money(BaseModel):
    """An amount of money: integer minor units plus an ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: MinorUnits
    currency: CurrencyCode

    @field_validator("currency")
    @classmethod
    def _currency_is_known(cls, code: str) -> str:
        if not is_known_currency(code):
            raise ValueError(f"unknown currency {code!r}")
        return code
