"""Daraja's B2C payouts, Transaction Status and Account Balance: the same OAuth and HTTP as
STK (client.py), plus what payouts need. All three are asynchronous: an answer here only says
Daraja took the request; the outcome comes to the ResultURL (results.py reads it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from attendance.phones import mask_phone, normalise_phone

from .client import DarajaClient, whole_shillings
from .transport import DarajaError, DarajaValidationError

logger = logging.getLogger(__name__)
B2C_MIN_AMOUNT = 10
# Spike arrest and quota: Daraja turned the request away at the door, nothing moved.
RATE_LIMITED = {"500.003.02", "500.003.03"}


def _payout_error(error: DarajaError) -> DarajaError:
    """What a failed payout POST proves. Only a refusal Daraja made before acting (a 4xx
    with its own error body, or a rate limit) or a request that never left proves nothing
    moved. Anything else, a 5xx such as 500.002.1001 "System internal error." included, may
    have paid (Daraja: "money unknown: query status"), so it is `may_have_reached_customer`.
    "Duplicate OriginatorConversationID" proves the first request with this id arrived.
    """
    if "duplicate" in error.message.lower():
        return DarajaError(
            error.message,
            code="duplicate",
            http_status=error.http_status,
            may_have_reached_customer=True,
        )
    status = error.http_status
    daraja_refused = (
        status is not None and 400 <= status < 500 and not error.code.startswith("http_")
    )
    if not error.sent or daraja_refused or error.code in RATE_LIMITED or status == 429:
        return error
    if error.may_have_reached_customer:
        return error
    return DarajaError(
        f"{error.message} M-Pesa may have paid it: asking how it ended.",
        code=error.code,
        http_status=status,
        may_have_reached_customer=True,
    )


@dataclass(frozen=True)
class Initiator:
    """The API operator who signs B2C, Transaction Status and Account Balance requests.
    `security_credential` comes from credentials.security_credential (never logged)."""

    name: str
    security_credential: str = field(repr=False)


@dataclass(frozen=True)
class Accepted:
    """Daraja took an asynchronous request; its result comes to the ResultURL."""

    conversation_id: str
    originator_conversation_id: str
    response_description: str


def _check_url(name: str, url: str) -> None:
    if not url.startswith(("https://", "http://")) or " " in url:
        raise DarajaValidationError(f"{name} must be an absolute URL without spaces.")


class B2CClient(DarajaClient):
    def b2c_payment(
        self,
        *,
        initiator: Initiator,
        originator_conversation_id: str,
        phone: str,
        amount: int,
        remarks: str,
        result_url: str,
        queue_timeout_url: str,
        occasion: str = "",
        command_id: str = "BusinessPayment",
    ) -> Accepted:
        """Ask Daraja to pay `amount` to `phone`. Accepted is not paid: the result comes to
        `result_url`. Never sent twice by this client: anything after sending that does not
        prove a refusal (a timeout, a broken connection, a 5xx, an unreadable answer) raises
        with `may_have_reached_customer` (money may have moved; only Transaction Status can
        say). Daraja's "Duplicate OriginatorConversationID" raises with `code="duplicate"`:
        the first request with that id got through.
        """
        try:
            phone = normalise_phone(phone)
        except Exception as error:
            raise DarajaValidationError(
                "B2C needs a Safaricom number such as 0712 345 678."
            ) from error
        shillings = whole_shillings(amount)
        if shillings < B2C_MIN_AMOUNT:
            raise DarajaValidationError(f"B2C pays at least KES {B2C_MIN_AMOUNT}.")
        remarks = remarks.strip()[:100]
        if len(remarks) < 2:
            raise DarajaValidationError("Remarks must be 2 to 100 characters.")
        _check_url("ResultURL", result_url)
        _check_url("QueueTimeOutURL", queue_timeout_url)
        body = {
            "OriginatorConversationID": originator_conversation_id,
            "InitiatorName": initiator.name,
            "SecurityCredential": initiator.security_credential,
            "CommandID": command_id,
            "Amount": shillings,
            "PartyA": self.config.short_code,
            "PartyB": phone,
            "Remarks": remarks,
            "QueueTimeOutURL": queue_timeout_url,
            "ResultURL": result_url,
            "Occassion": occasion[:100],  # Safaricom's spelling
        }
        logger.info("B2C payout of KES %s to %s", shillings, mask_phone(phone))
        try:
            data = self._authorised_post("/mpesa/b2c/v3/paymentrequest", body, safe_to_retry=False)
        except DarajaError as error:
            raise _payout_error(error) from error
        return self._accepted(data, may_have_moved_money=True)

    def transaction_status(
        self,
        *,
        initiator: Initiator,
        originator_conversation_id: str,
        result_url: str,
        queue_timeout_url: str,
        transaction_id: str = "",
        remarks: str = "Payout status",
    ) -> Accepted:
        """Ask how a transaction ended; the answer comes to `result_url`. Moves no money, so
        it is retried on transport errors and may be repeated."""
        _check_url("ResultURL", result_url)
        _check_url("QueueTimeOutURL", queue_timeout_url)
        body = {
            "Initiator": initiator.name,  # not InitiatorName, here
            "SecurityCredential": initiator.security_credential,
            "CommandID": "TransactionStatusQuery",
            "TransactionID": transaction_id,
            "OriginalConversationID": originator_conversation_id,
            "PartyA": self.config.short_code,
            "IdentifierType": "4",
            "ResultURL": result_url,
            "QueueTimeOutURL": queue_timeout_url,
            "Remarks": remarks[:100],
            "Occasion": "",
        }
        data = self._authorised_post("/mpesa/transactionstatus/v1/query", body, safe_to_retry=True)
        return self._accepted(data, may_have_moved_money=False)

    def account_balance(
        self, *, initiator: Initiator, result_url: str, queue_timeout_url: str
    ) -> Accepted:
        """Ask for the shortcode's balances; the answer comes to `result_url`."""
        _check_url("ResultURL", result_url)
        _check_url("QueueTimeOutURL", queue_timeout_url)
        body = {
            "Initiator": initiator.name,
            "SecurityCredential": initiator.security_credential,
            "CommandID": "AccountBalance",
            "PartyA": self.config.short_code,
            "IdentifierType": "4",
            "Remarks": "Float check",
            "QueueTimeOutURL": queue_timeout_url,
            "ResultURL": result_url,
        }
        data = self._authorised_post("/mpesa/accountbalance/v1/query", body, safe_to_retry=True)
        return self._accepted(data, may_have_moved_money=False)

    @staticmethod
    def _accepted(data: dict, *, may_have_moved_money: bool) -> Accepted:
        if str(data.get("ResponseCode")) != "0" or not data.get("ConversationID"):
            # An answer we cannot read after sending a payout may still have paid.
            unreadable = not data or str(data.get("ResponseCode")) == "0"
            raise DarajaError(
                data.get("ResponseDescription") or "Daraja did not accept the request.",
                code=str(data.get("ResponseCode", "")) or "unreadable",
                may_have_reached_customer=may_have_moved_money and unreadable,
            )
        return Accepted(
            conversation_id=str(data["ConversationID"]),
            originator_conversation_id=str(data.get("OriginatorConversationID", "")),
            response_description=str(data.get("ResponseDescription", "")),
        )
