"""The local Daraja simulator's own routes, which Daraja does not have: what tests and
benchmarks read back (`GET /simulator/stats`, `GET /simulator/log`) and how they start
afresh (`POST /simulator/reset`). simulator.py serves them beside the Daraja API."""

from __future__ import annotations

from typing import Any


def stats(state: Any) -> dict:
    """Request counters, the pushes per phone number, and the payout and Paybill books."""
    with state.lock:
        counters = {**state.stats, "prompts_per_phone": dict(state.prompts_per_phone)}
    return {**counters, "payouts": state.b2c.snapshot(), "paybill": state.paybill.snapshot()}


def log(state: Any) -> dict:
    """Every API call with the time it arrived (the Daraja rate tests read the spacing)."""
    with state.lock:
        return {"calls": list(state.calls)}


def reset(state: Any) -> dict:
    with state.lock:
        for key in state.stats:
            state.stats[key] = 0
        state.prompts_per_phone.clear()
        state.calls.clear()
    state.b2c.reset()
    state.paybill.reset()
    return {"ok": True}


READS = {"/simulator/stats": stats, "/simulator/log": log}
