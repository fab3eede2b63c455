"""The order list as CSV the way Japanese spreadsheets open it: UTF-8 with a BOM, or Shift_JIS (Windows-31J)."""

import csv
import io
from collections.abc import Iterable, Sequence

ENCODINGS = {"utf-8": "utf-8-sig", "shift_jis": "cp932"}
"""What the download offers → Python codec. Excel's 'Shift_JIS' is Windows-31J (cp932: NEC and IBM extensions)."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\x00", "")
    # A cell starting like a formula is run by spreadsheets (CSV injection): keep it text.
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _to_windows_31j(text: str) -> bytes:
    try:
        return text.encode("cp932")
    except UnicodeEncodeError:
        # 〓 (geta) is how Japanese systems mark a character the encoding can't hold.
        return b"".join(_char_to_windows_31j(ch) for ch in text)


def _char_to_windows_31j(ch: str) -> bytes:
    try:
        return ch.encode("cp932")
    except UnicodeEncodeError:
        return "〓".encode("cp932")


def encode_rows(header: Sequence[str], rows: Iterable[Sequence[object]], encoding: str) -> bytes:
    """CSV bytes (CRLF line ends) in `utf-8` (with BOM) or `shift_jis`; characters Shift_JIS lacks become 〓."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {sorted(ENCODINGS)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_cell(h) for h in header])
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    text = buffer.getvalue()
    if ENCODINGS[encoding] == "cp932":
        return b"".join(_to_windows_31j(line) for line in text.splitlines(keepends=True))
    return text.encode("utf-8-sig", errors="replace")
