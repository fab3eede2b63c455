"""Stock imports: parse a stock CSV and validate stock lines, all or nothing, with line-numbered reasons.

A sku is *known* once shipping has a stock row for it or has seen it in an order; an import may only
name known skus unless it says `allow_new_skus` (so a typo in a file never creates a phantom product).
"""

import csv
import io
from dataclasses import dataclass

DEFAULT_WAREHOUSE = "main"
COOL_TYPES = ("normal", "chilled", "frozen")
REQUIRED_COLUMNS = ("sku", "on_hand")
OPTIONAL_COLUMNS = ("warehouse", "cool_type")


@dataclass(frozen=True)
class StockLine:
    """One stock level to set: units on hand of a sku in a warehouse (line = where it came from)."""

    line: int
    sku: str
    warehouse: str
    on_hand: int
    cool_type: str | None = None


@dataclass(frozen=True)
class LineError:
    """Why one line of an import is refused."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def parse_stock_csv(text: str) -> tuple[list[StockLine], list[LineError]]:
    """Parses `sku,warehouse,on_hand[,cool_type]` CSV with a header row; line numbers count the header as 1."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = list(enumerate(reader, start=1))
    if not rows:
        return [], [LineError(1, "the file is empty: expected a header row sku,warehouse,on_hand")]
    header = [name.strip().lower() for name in rows[0][1]]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        reasons = [f"header lacks column {name!r}" for name in missing]
        reasons += [f"header has unknown column {name!r}" for name in unknown]
        return [], [LineError(1, "; ".join(reasons))]
    position = {name: header.index(name) for name in header}
    lines: list[StockLine] = []
    errors: list[LineError] = []
    for number, fields in rows[1:]:
        if not fields or all(not value.strip() for value in fields):
            continue
        if len(fields) != len(header):
            errors.append(LineError(number, f"expected {len(header)} fields, found {len(fields)}"))
            continue
        value = {name: fields[index].strip() for name, index in position.items()}
        try:
            on_hand = int(value["on_hand"])
        except ValueError:
            errors.append(LineError(number, f"on_hand {value['on_hand']!r} is not a whole number"))
            continue
        lines.append(
            StockLine(
                line=number,
                sku=value["sku"],
                warehouse=value.get("warehouse") or DEFAULT_WAREHOUSE,
                on_hand=on_hand,
                cool_type=value.get("cool_type") or None,
            )
        )
    return lines, errors


def validate_stock_lines(
    lines: list[StockLine],
    *,
    known_skus: set[str],
    allocated: dict[tuple[str, str], int],
    allow_new_skus: bool = False,
) -> list[LineError]:
    """Every reason the lines can't be applied; an empty list means the whole import may be applied."""
    errors: list[LineError] = []
    seen: dict[tuple[str, str], int] = {}
    for line in lines:
        key = (line.sku, line.warehouse)
        if not line.sku:
            errors.append(LineError(line.line, "sku is empty"))
            continue
        if not line.warehouse:
            errors.append(LineError(line.line, "warehouse is empty"))
        if line.on_hand < 0:
            errors.append(LineError(line.line, f"on_hand {line.on_hand} is negative"))
        elif line.on_hand < allocated.get(key, 0):
            errors.append(
                LineError(line.line, f"on_hand {line.on_hand} is below the {allocated[key]} units allocated to orders")
            )
        if line.sku not in known_skus and not allow_new_skus:
            errors.append(LineError(line.line, f"unknown sku {line.sku!r}"))
        if line.cool_type is not None and line.cool_type not in COOL_TYPES:
            errors.append(LineError(line.line, f"cool_type {line.cool_type!r} is not one of {', '.join(COOL_TYPES)}"))
        if key in seen:
            errors.append(LineError(line.line, f"sku {line.sku!r} in {line.warehouse!r} already set on line {seen[key]}"))
        else:
            seen[key] = line.line
    return sorted(errors, key=lambda error: error.line)
