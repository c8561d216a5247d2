"""The simulator's statement: everything it did, as the org portal exports it (CSV).

Money in (Paybill payments from the SIM menu and paid prompts), payouts that paid (each with its
charge, which shares the payout's receipt), reversals (their own receipt, linked to the payment
reversed), in time order with a running Utility balance.
`GET /simulator/statement` serves it; `?start=YYYY-MM-DD&end=YYYY-MM-DD` limits the days.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .simulator_stk import NAIROBI
from .statement import write_statement

B2C_CHARGE = Decimal("15.00")  # the simulator's own flat fee (real tariffs vary by amount)


def statement_lines(state: Any, start: date | None = None, end: date | None = None) -> list[dict]:
    events: list[tuple[datetime, dict]] = []
    with state.paybill.lock:
        paid_in = list(state.paybill.payments)
    for payment in paid_in:
        events.append(
            (
                payment.at,
                {
                    "Receipt No.": payment.receipt,
                    "Details": f"Pay Bill from {payment.phone[:6]}***{payment.phone[-3:]} - "
                    f"{payment.first_name or 'CUSTOMER'} Acc. {payment.bill_ref}",
                    "Paid In": f"{payment.amount:.2f}",
                    "Reason Type": "Pay Bill",
                    "Other Party Info": payment.first_name,
                    "A/C No.": payment.bill_ref,
                },
            )
        )
    with state.b2c.lock:
        payouts = [p for p in state.b2c.payouts.values() if p.code == 0 and not p.timed_out]
    for payout in payouts:
        party = f"{payout.phone} - {payout.registered_name}"
        events.append(
            (
                payout.completed_at,
                {
                    "Receipt No.": payout.receipt,
                    "Details": f"Business Payment to {party}",
                    "Withdrawn": f"-{Decimal(payout.amount):.2f}",
                    "Reason Type": "Business Payment",
                    "Other Party Info": party,
                },
            )
        )
        events.append(
            (
                payout.completed_at,
                {
                    "Receipt No.": payout.receipt,
                    "Details": "Business Payment Charge",
                    "Withdrawn": f"-{B2C_CHARGE:.2f}",
                    "Reason Type": "Business Payment Charge",
                },
            )
        )
    with state.paybill.lock:
        reversals = list(state.reversals)
    for reversal in reversals:
        events.append(
            (
                reversal.at,
                {
                    "Receipt No.": reversal.receipt,
                    "Details": f"Reversal of {reversal.original} to {reversal.phone[:6]}***",
                    "Withdrawn": f"-{reversal.amount:.2f}",
                    "Reason Type": "Reversal",
                    "Linked Transaction ID": reversal.original,
                },
            )
        )
    events.sort(key=lambda event: event[0])
    balance, lines = Decimal("500000.00"), []
    for at, line in events:
        day = at.astimezone(NAIROBI).date()
        balance += Decimal(line.get("Paid In") or 0) + Decimal(line.get("Withdrawn") or 0)
        if (start and day < start) or (end and day > end):
            continue
        when = at.astimezone(NAIROBI).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            {
                **line,
                "Completion Time": when,
                "Initiation Time": when,
                "Transaction Status": "Completed",
                "Balance": f"{balance:.2f}",
                "Balance Confirmed": "true",
            }
        )
    return lines


def statement_csv(state: Any, start: date | None = None, end: date | None = None) -> str:
    return write_statement(
        statement_lines(state, start, end),
        short_code=state.paybill.short_code,
        holder="SOUND FUSION (simulator)",
    )


def serve_statement(handler: Any, state: Any, query: dict) -> None:
    """`GET /simulator/statement[?start=YYYY-MM-DD&end=YYYY-MM-DD]`: the CSV, as a download."""
    try:
        days = [
            date.fromisoformat(query[key][0]) if key in query else None for key in ("start", "end")
        ]
    except ValueError:
        return handler.error(400, "400.002.02", "Bad Request - Invalid date")
    body = statement_csv(state, *days).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "text/csv; charset=utf-8")
    handler.send_header("Content-Disposition", 'attachment; filename="statement.csv"')
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
    return None
