"""Money as integer minor units with an ISO 4217 currency; never a float."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

_ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_TWO_DECIMALS = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR "
    "KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
    "MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
    "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD "
    "TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWL"
)
MINOR_UNITS: dict[str, int] = {
    **{code: 2 for code in _TWO_DECIMALS.split()},
    **{code: 0 for code in _ZERO_DECIMALS.split()},
    **{code: 3 for code in _THREE_DECIMALS.split()},
}
"""The currencies ordermesh accepts (ISO 4217's active codes), with the number of decimals of their minor unit."""

CurrencyCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 currency code, e.g. JPY (no decimals) or USD (cents).",
        examples=["JPY"],
    ),
]

MAX_MINOR_UNITS = 10**12
"""The largest amount (in either direction) any ordermesh message carries: a trillion yen, ten billion dollars.
Ingresses refuse larger amounts at once (422) rather than letting them fail later in a service."""



def _not_below_minimum(amount: int) -> int:
    if amount < -MAX_MINOR_UNITS:
        raise ValueError(f"amount must not be below -{MAX_MINOR_UNITS}")
    return amount


MinorUnits = Annotated[
    int,
    # strict: 9660.0 or "9660" is refused, not quietly converted (money is never a float)
    Field(strict=True, le=MAX_MINOR_UNITS, description="An amount in the currency's minor unit (yen for JPY, cents for USD)."),
    # a validator, not ge=: a field's own ge=0 would replace an annotated ge and lose one of the two bounds
    AfterValidator(_not_below_minimum),
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
