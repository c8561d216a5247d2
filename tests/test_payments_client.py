"""The Daraja client against the simulator over real HTTP."""

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests
from django.core.cache import cache

from attendance.mpesa import daraja_client
from attendance.mpesa.client import (
    DarajaClient,
    DarajaConfig,
    DarajaError,
    DarajaValidationError,
    daraja_password,
    daraja_timestamp,
)
from tests.support.smtp import free_port
from tests.support.waiting import wait_until

# Loopback only: the simulator really POSTs its callbacks to this address.
URL = f"http://127.0.0.1:{free_port()}/api/payments/callback/token/"


def _stats(simulator):
    return requests.get(f"{simulator.url}/simulator/stats", timeout=5).json()


def _push(client, phone="254708374149", amount=10, **kwargs):
    return client.stk_push(
        phone=phone,
        amount=amount,
        account_reference=kwargs.get("account_reference", "SF Balance"),
        transaction_desc=kwargs.get("transaction_desc", "Balance"),
        callback_url=kwargs.get("callback_url", URL),
    )


def test_timestamp_is_kenyan_24_hour_time():
    afternoon = datetime(2026, 11, 26, 12, 5, 9, tzinfo=ZoneInfo("UTC"))
    assert daraja_timestamp(afternoon) == "20261126150509"
    assert daraja_password("174379", "key", "20261126150509") == (
        "MTc0Mzc5a2V5MjAyNjExMjYxNTA1MDk="
    )


def test_push_is_accepted_and_the_token_is_fetched_once(daraja):
    client = daraja_client()
    first = _push(client, phone="0708374149")
    second = _push(client, phone="0708374150")
    assert first.checkout_request_id.startswith("ws_CO_")
    assert first.checkout_request_id != second.checkout_request_id
    assert _stats(daraja)["oauth"] == 1


def test_concurrent_callers_share_one_token_fetch(daraja):
    client = daraja_client()
    tokens, barrier = [], threading.Barrier(8)

    def fetch():
        barrier.wait()
        tokens.append(client.access_token())

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1
    assert _stats(daraja)["oauth"] == 1


def test_an_expired_token_is_fetched_again(daraja):
    client = daraja_client()
    client.access_token()
    cache.delete(client._token_key)  # what expiry does
    _push(client)
    assert _stats(daraja)["oauth"] == 2


def test_token_cache_lifetime_follows_expires_in(daraja, monkeypatch):
    client = daraja_client()
    seen = {}
    original = cache.set

    def spy(key, value, timeout=None, **kwargs):
        seen[key] = timeout
        return original(key, value, timeout, **kwargs)

    monkeypatch.setattr(cache, "set", spy)
    client.access_token()
    # expires_in arrives as the string "3599"; refreshed two minutes early.
    assert seen[client._token_key] == 3599 - 120


def test_an_invalid_token_is_refetched_once(daraja):
    client = daraja_client()
    client.access_token()
    daraja.state.tokens.clear()  # Daraja revoked it (a newer token was issued elsewhere)
    accepted = _push(client)
    assert accepted.checkout_request_id
    stats = _stats(daraja)
    assert stats["oauth"] == 2
    assert stats["stk_push"] == 1  # the first try was refused at the door, before processing


def test_wrong_credentials_are_a_clear_error(daraja, settings):
    settings.MPESA_CONSUMER_SECRET = "wrong"
    with pytest.raises(DarajaError) as caught:
        daraja_client().access_token()
    assert caught.value.code == "400.008.01"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amount": "10.50"}, "whole shillings"),
        ({"amount": 0}, "between KES 1"),
        ({"amount": 250001}, "between KES 1"),
        ({"phone": "0812345678"}, "Safaricom number"),
        ({"account_reference": "ThirteenChars"}, "AccountReference"),
        ({"transaction_desc": "Fourteen chars"}, "TransactionDesc"),
        ({"callback_url": "not a url"}, "CallBackURL"),
    ],
)
def test_input_is_checked_before_sending(daraja, kwargs, message):
    with pytest.raises(DarajaValidationError, match=message):
        _push(daraja_client(), **kwargs)
    assert _stats(daraja)["stk_push"] == 0


def test_daraja_down_is_unreachable_and_not_reached(settings):
    config = DarajaConfig(
        base_url=f"http://127.0.0.1:{free_port()}",
        consumer_key="k",
        consumer_secret="s",
        short_code="174379",
        pass_key="p",
    )
    with pytest.raises(DarajaError) as caught:
        _push(DarajaClient(config, cache=cache))
    assert caught.value.code == "unreachable"
    assert (caught.value.sent, caught.value.may_have_reached_customer) == (False, False)


def test_a_slow_push_times_out_and_is_not_retried(daraja, settings):
    settings.MPESA_READ_TIMEOUT = 0.5
    with pytest.raises(DarajaError) as caught:
        _push(daraja_client(), phone="254711115040")
    assert caught.value.code == "timeout"
    assert caught.value.may_have_reached_customer is True
    assert _stats(daraja)["stk_push"] == 1


def test_a_500_answer_carries_darajas_code_and_is_not_retried(daraja):
    with pytest.raises(DarajaError) as caught:
        _push(daraja_client(), phone="254711115000")
    assert caught.value.code == "500.003.1001"
    assert caught.value.retryable is True
    assert caught.value.may_have_reached_customer is False  # Daraja refused: nobody prompted
    assert _stats(daraja)["stk_push"] == 1


def test_query_says_pending_until_the_customer_answers_then_the_result(daraja):
    client = daraja_client()
    daraja.state.callback_delay = 0.3
    accepted = _push(client, phone="254711111032")
    assert client.stk_query(checkout_request_id=accepted.checkout_request_id).pending
    assert wait_until(lambda: daraja.state.answered(accepted.checkout_request_id))
    answer = client.stk_query(checkout_request_id=accepted.checkout_request_id)
    assert answer.result_code == "1032"
    assert "cancelled" in answer.result_description


def test_a_second_push_to_a_busy_phone_is_refused(daraja):
    client = daraja_client()
    daraja.state.callback_delay = 5
    _push(client, phone="254711110111")
    with pytest.raises(DarajaError, match="Unable to lock subscriber"):
        _push(client, phone="254711110111")


def test_a_client_that_gives_up_leaves_no_traceback_from_the_simulator(daraja, settings, capsys):
    """A push the client stopped waiting for is answered into a closed socket: normal for a
    provider, and printing it landed a traceback in a later test's stderr (a CI failure)."""
    import time

    settings.MPESA_READ_TIMEOUT = 0.1
    daraja.state.push_latency = 0.5
    client = daraja_client()
    with pytest.raises(DarajaError):
        _push(client, phone="254711115000")  # answered 500, after the client gave up
    time.sleep(0.7)  # past the simulator's answer into the closed connection
    assert capsys.readouterr().err == ""


def test_a_stopped_simulator_sends_none_of_the_callbacks_it_had_promised():
    """A long callback delay outlived its test and landed in the next test's live server (one
    server for the session, one URL): 95 extra B2C results in a CI run. Stopping cancels them."""
    import time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from attendance.mpesa.simulator import DarajaSimulator

    received = []

    class Catch(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    catcher = HTTPServer(("127.0.0.1", 0), Catch)
    threading.Thread(target=catcher.serve_forever, daemon=True).start()
    callback_url = f"http://127.0.0.1:{catcher.server_address[1]}/callback/token/"
    simulator = DarajaSimulator(callback_delay=0.5).start()
    config = DarajaConfig(
        base_url=simulator.url,
        consumer_key="sim-consumer-key",
        consumer_secret="sim-consumer-secret",
        short_code="174379",
        pass_key=simulator.state.pass_key,
    )
    try:
        DarajaClient(config, cache=cache).stk_push(
            phone="254708374149",
            amount=10,
            account_reference="SF Balance",
            transaction_desc="Balance",
            callback_url=callback_url,
        )
        simulator.stop()
        time.sleep(1.0)  # past the promised callback
        assert received == []
    finally:
        catcher.shutdown()
