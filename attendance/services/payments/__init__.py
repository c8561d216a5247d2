"""M-Pesa STK push payments (money in), in modules that follow the data:

- `prompts`: requesting a payment, one prompt to a phone, on record before it is sent;
- `inbox`: every callback stored raw and committed, then processed (and its batch task);
- `paybill`, `paybill_inbox`, `paybill_pull`, `paybill_registration`: payments made from the
  SIM menu (C2B), credited once per receipt, and Pull Transactions;
- `reversals`, `reversal_inbox`: giving a Paybill payment back to its payer;
- `statement`, `books`: the M-Pesa statement imported, and reconciled with our books;
- `settlement`: the rules that move money, applied once under a row lock;
- `reconciliation`: settling by Daraja's STK query what no callback reported;
- `outcomes`: our result codes, the hints members read, PaymentError;
- `kick`: the Redis flag that keeps a burst of callbacks to one batch task.

The public names are importable from here, as callers always have.
"""

from .inbox import (
    callback_process,
    callback_receive,
    callbacks_process_pending,
    callbacks_process_received,
    callbacks_process_received_task,
)
from .kick import callback_kick
from .outcomes import PaymentError, payment_explanation
from .paybill_inbox import paybill_notices  # noqa: F401  (registers the Paybill inbox)
from .prompts import (
    payment_callback_url,
    payment_references,
    payment_request_stk_push,
    payment_resend,
)
from .reconciliation import payment_expire, payment_query, payments_reconcile
from .reversal_inbox import reversal_results  # noqa: F401  (registers the reversal inbox)
from .settlement import payment_apply_result, payment_credit_after_review

__all__ = [
    "PaymentError",
    "callback_kick",
    "callback_process",
    "callback_receive",
    "callbacks_process_pending",
    "callbacks_process_received",
    "callbacks_process_received_task",
    "payment_apply_result",
    "payment_callback_url",
    "payment_credit_after_review",
    "payment_expire",
    "payment_explanation",
    "payment_query",
    "payment_references",
    "payment_request_stk_push",
    "payment_resend",
    "payments_reconcile",
]
