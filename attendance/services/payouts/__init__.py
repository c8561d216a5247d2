"""M-Pesa B2C payouts (money out), in modules that follow the data:

- `submission`: the float check, a payout per payslip committed before its one POST;
- `approvals`: held payouts (new numbers) released by a second person, and Pay again;
- `inbox`: every result body stored raw and committed, then processed;
- `settlement`: the rules that settle a payout, once, under its row lock;
- `reconciliation`: asking Transaction Status about payouts whose result has not come.
"""

from .approvals import payout_retry, payouts_held, payouts_release
from .inbox import (
    payout_result_process,
    payout_result_process_task,
    payout_result_receive,
    payout_result_reprocess,
    payout_result_set_aside,
    payout_results_process_pending,
)
from .reconciliation import payout_check, payout_close, payouts_reconcile
from .settlement import (
    payout_failure_text,
    payout_mark_failed,
    payout_mark_paid,
    payout_mark_unknown,
)
from .submission import (
    PayoutError,
    payout_amount,
    payout_float_check,
    payout_result_url,
    payout_submit,
    payout_summary,
    payouts_due,
    payouts_prepare,
    payslips_that_may_pay,
)

__all__ = [
    "PayoutError",
    "payout_amount",
    "payout_check",
    "payout_close",
    "payout_failure_text",
    "payout_float_check",
    "payout_mark_failed",
    "payout_mark_paid",
    "payout_mark_unknown",
    "payout_result_process",
    "payout_result_process_task",
    "payout_result_receive",
    "payout_result_reprocess",
    "payout_result_set_aside",
    "payout_result_url",
    "payout_results_process_pending",
    "payout_retry",
    "payout_submit",
    "payout_summary",
    "payouts_due",
    "payouts_held",
    "payouts_prepare",
    "payouts_reconcile",
    "payouts_release",
    "payslips_that_may_pay",
]
