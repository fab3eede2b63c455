"""Tracking numbers from a carrier's issued-labels file: Yamato check digits and which lines can be applied."""

import csv
import io
from dataclasses import dataclass

MANAGEMENT_NUMBER_COLUMN = "お客様管理番号"
TRACKING_NUMBER_COLUMN = "伝票番号"


def yamato_check_digit_ok(number: str) -> bool:
    """Whether a Yamato tracking number is 12 digits whose last is the first eleven (as a number) mod 7."""
    digits = number.replace("-", "")
    return len(digits) == 12 and digits.isdigit() and int(digits[:11]) % 7 == int(digits[11])


@dataclass(frozen=True)
class IssuedLabel:
    """One line of an issued-labels file: our management number and the carrier's tracking number."""

    line: int
    management_number: str
    tracking_number: str


@dataclass(frozen=True)
class TrackingOutcome:
    """What happens to one line: applied to a shipment, or rejected with a reason."""

    line: int
    management_number: str
    tracking_number: str
    ok: bool
    reason: str | None = None


def parse_issued_labels(text: str) -> tuple[list[IssuedLabel], list[TrackingOutcome]]:
    """Reads the header-named columns お客様管理番号 and 伝票番号; unreadable lines come back as rejections."""
    rows = list(enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1))
    if not rows:
        return [], [TrackingOutcome(1, "", "", False, "the file is empty")]
    header = [name.strip() for name in rows[0][1]]
    if MANAGEMENT_NUMBER_COLUMN not in header or TRACKING_NUMBER_COLUMN not in header:
        reason = f"header lacks {MANAGEMENT_NUMBER_COLUMN} or {TRACKING_NUMBER_COLUMN}"
        return [], [TrackingOutcome(1, "", "", False, reason)]
    management, tracking = header.index(MANAGEMENT_NUMBER_COLUMN), header.index(TRACKING_NUMBER_COLUMN)
    labels, rejected = [], []
    for number, fields in rows[1:]:
        if not fields or all(not value.strip() for value in fields):
            continue
        if len(fields) <= max(management, tracking):
            rejected.append(TrackingOutcome(number, "", "", False, f"only {len(fields)} fields"))
            continue
        labels.append(IssuedLabel(number, fields[management].strip(), fields[tracking].strip().replace("-", "")))
    return labels, rejected


def plan_tracking(
    labels: list[IssuedLabel], known: set[str], used_by: dict[str, str]
) -> list[TrackingOutcome]:
    """Which lines apply: the management number must be a known shipment, the number valid and not another's.

    `known` are management numbers of this shop's shipments; `used_by` maps tracking numbers already
    recorded to the shipment holding them.
    """
    outcomes = []
    taken = dict(used_by)
    for label in labels:
        reason = None
        if label.management_number not in known:
            reason = f"unknown management number {label.management_number!r}"
        elif not yamato_check_digit_ok(label.tracking_number):
            reason = f"tracking number {label.tracking_number!r} fails the check digit"
        elif taken.get(label.tracking_number, label.management_number) != label.management_number:
            reason = f"tracking number {label.tracking_number} is already used by shipment {taken[label.tracking_number]}"
        if reason is None:
            taken[label.tracking_number] = label.management_number
        outcomes.append(TrackingOutcome(label.line, label.management_number, label.tracking_number, reason is None, reason))
    return outcomes
