"""Daraja callback bodies exactly as Safaricom sends them (MPESA_CRM_IMPLEMENTATION.md)."""

import json


def success_callback(
    checkout, *, amount=100, receipt="NLJ7RT61SV", phone=254712345678, paid_at=20261126102115
):
    return json.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "29115-34620561-1",
                    "CheckoutRequestID": checkout,
                    "ResultCode": 0,
                    "ResultDesc": "The service request is processed successfully.",
                    "CallbackMetadata": {
                        "Item": [
                            {"Name": "Amount", "Value": float(amount)},
                            {"Name": "MpesaReceiptNumber", "Value": receipt},
                            {"Name": "Balance"},
                            {"Name": "TransactionDate", "Value": paid_at},
                            {"Name": "PhoneNumber", "Value": phone},
                        ]
                    },
                }
            }
        }
    )


def failure_callback(checkout, code=1032, desc="Request cancelled by user"):
    return json.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "29115-34620561-1",
                    "CheckoutRequestID": checkout,
                    "ResultCode": code,
                    "ResultDesc": desc,
                }
            }
        }
    )
