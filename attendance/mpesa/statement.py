"""Reading the statement Safaricom's org portal exports (CSV or XLSX), and writing one in the
same shape (the simulator's export). Format knowledge only, no models.

The portal's export is not documented by Daraja (*unconfirmed*): what is relied on is what
integrators see in it. A few lines about the account come first (holder, short code, period),
then a header row and one row per transaction with the columns below; totals may follow.
So the header row is found by its names, not its position; columns are matched by name with
the usual variants; amounts may carry thousands separators and withdrawals may be negative;
times are Kenyan time, as text or as spreadsheet dates. A payout and its charge share a
receipt, so a row is identified by receipt, time, details and amounts together.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from .callbacks import NAIROBI, clean_text

COLUMNS = {
    "receipt": ("receipt no.", "receipt no", "receipt", "receipt number", "transaction id"),
    "completed": ("completion time", "completion date", "transaction date", "date"),
    "details": ("details", "description", "particulars"),
    "status": ("transaction status", "status"),
    "paid_in": ("paid in", "credit", "money in"),
    "withdrawn": ("withdrawn", "debit", "withdrawal", "money out"),
    "balance": ("balance",),
    "reason_type": ("reason type",),
    "other_party": ("other party info", "other party"),
    "linked": ("linked transaction id", "linked transaction"),
    "account": ("a/c no.", "a/c no", "account no.", "account no", "account number"),
}
EXPORT_HEADER = [
    "Receipt No.",
    "Completion Time",
    "Initiation Time",
    "Details",
    "Transaction Status",
    "Paid In",
    "Withdrawn",
    "Balance",
    "Balance Confirmed",
    "Reason Type",
    "Other Party Info",
    "Linked Transaction ID",
    "A/C No.",
]
_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %H:%M",
    "%Y-%m-%dT%H:%M:%S",
)


class UnreadableStatement(ValueError):
    """Not a statement we can read; the message says why, in Finance's words."""


@dataclass(frozen=True)
class StatementLine:
    receipt: str
    completed_at: datetime
    details: str
    status: str
    paid_in: Decimal
    withdrawn: Decimal
    balance: Decimal | None
    reason_type: str
    other_party: str
    linked_receipt: str
    account_number: str

    @property
    def fingerprint(self) -> str:
        text = "|".join(
            (
                self.receipt,
                self.completed_at.isoformat(),
                self.details,
                f"{self.paid_in:.2f}",
                f"{self.withdrawn:.2f}",
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def kind(self) -> str:
        """paid_in, payout, charge, reversal or other (StatementRow.Kind's values)."""
        words = f"{self.details} {self.reason_type}".lower()
        if self.status and self.status.strip().lower() not in ("completed", "complete"):
            return "other"
        if "reversal" in words:
            return "reversal"
        if "charge" in words or "fee" in words.split():
            return "charge"
        if self.paid_in > 0:
            return "paid_in"
        if self.withdrawn > 0 and any(
            word in words for word in ("business payment", "salary payment", "promotion payment")
        ):
            return "payout"
        return "other"


@dataclass
class Statement:
    """What the reader found besides the rows (filled as they are read)."""

    short_code: str = ""
    skipped: int = 0  # lines after the header that are not transactions (totals, blanks)


def _norm(value: Any) -> str:
    return " ".join(str(value or "").split()).strip().lower()


def _amount(value: Any) -> Decimal:
    if value in (None, ""):
        return Decimal(0)
    if isinstance(value, int | float | Decimal):
        return abs(Decimal(str(value))).quantize(Decimal("0.01"))
    text = str(value).replace(",", "").replace("KES", "").replace("Ksh", "").strip()
    if text in ("", "-"):
        return Decimal(0)
    try:
        return abs(Decimal(text)).quantize(Decimal("0.01"))
    except InvalidOperation as error:
        raise ValueError(f"{value!r} is not an amount") from error


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=NAIROBI)
    text = str(value or "").strip()
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=NAIROBI)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a time")


def _header_map(cells: list[Any]) -> dict[str, int] | None:
    names = [_norm(cell) for cell in cells]
    found: dict[str, int] = {}
    for key, variants in COLUMNS.items():
        for index, name in enumerate(names):
            if name in variants and index not in found.values():
                found[key] = index
                break
    if {"receipt", "completed"} <= found.keys() and ({"paid_in", "withdrawn"} & found.keys()):
        return found
    return None


def read_statement(rows: Iterable[list[Any]], info: Statement) -> Iterator[StatementLine]:
    """The transactions of a statement given as rows of cells (CSV or XLSX alike)."""
    iterator = iter(rows)
    columns = _find_header(iterator, info)
    for cells in iterator:
        values = {
            key: cells[index] if index < len(cells) else None for key, index in columns.items()
        }
        receipt = clean_text(str(values.get("receipt") or ""), 20).strip()
        if not receipt or not receipt.isalnum():
            info.skipped += 1  # a blank line, a totals line
            continue
        try:
            yield _line(receipt, values)
        except ValueError as error:
            raise UnreadableStatement(f"Row for receipt {receipt}: {error}.") from error


def _find_header(rows: Iterator[list[Any]], info: Statement) -> dict[str, int]:
    """Read the account lines up to the header row; the header's columns by name."""
    for cells in rows:
        cells = list(cells)
        first = _norm(cells[0]) if cells else ""
        if first.startswith(("short code", "organization short code")):
            info.short_code = next((str(c).strip() for c in cells[1:] if c), "")
        columns = _header_map(cells)
        if columns is not None:
            return columns
    raise UnreadableStatement(
        "No header row with Receipt No., Completion Time and Paid In or Withdrawn: is this "
        "the statement exported from the M-Pesa org portal?"
    )


def _line(receipt: str, values: dict[str, Any]) -> StatementLine:
    def text(key: str, limit: int) -> str:
        return clean_text(str(values.get(key) or ""), limit).strip()

    balance = values.get("balance")
    return StatementLine(
        receipt=receipt,
        completed_at=_time(values.get("completed")),
        details=text("details", 255),
        status=text("status", 30),
        paid_in=_amount(values.get("paid_in")),
        withdrawn=_amount(values.get("withdrawn")),
        balance=_amount(balance) if balance not in (None, "") else None,
        reason_type=text("reason_type", 80),
        other_party=text("other_party", 160),
        linked_receipt=text("linked", 20),
        account_number=text("account", 40),
    )


def statement_rows(file: IO[bytes], name: str) -> Iterator[list[Any]]:
    """The rows of cells of an uploaded CSV or XLSX file, streamed (flat memory)."""
    if name.lower().endswith((".xlsx", ".xlsm")):
        from openpyxl import load_workbook

        try:
            book = load_workbook(file, read_only=True, data_only=True)
        except Exception as error:
            raise UnreadableStatement("This .xlsx file cannot be opened.") from error
        try:
            for row in book.worksheets[0].iter_rows(values_only=True):
                yield list(row)
        finally:
            book.close()
        return
    text = io.TextIOWrapper(file, encoding="utf-8-sig", errors="replace", newline="")
    try:
        yield from csv.reader(text)
    finally:
        text.detach()


def write_statement(lines: Iterable[dict], *, short_code: str, holder: str) -> str:
    """A CSV in the portal's shape: the account lines, a blank line, the header, the rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Account Holder:", holder])
    writer.writerow(["Short Code:", short_code])
    writer.writerow(["Account:", "Utility Account"])
    writer.writerow([])
    writer.writerow(EXPORT_HEADER)
    for line in lines:
        writer.writerow([line.get(column, "") for column in EXPORT_HEADER])
    return out.getvalue()
