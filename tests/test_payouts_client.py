"""The B2C, Transaction Status and Account Balance client against the simulator over HTTP,
the SecurityCredential, and reading results (the wire shapes of Daraja's documentation)."""

import json
import queue
import threading
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache.backends.locmem import LocMemCache

from attendance.mpesa.b2c import B2CClient, Initiator
from attendance.mpesa.client import DarajaConfig
from attendance.mpesa.credentials import (
    CredentialError,
    decrypt_credential,
    security_credential,
    self_signed_certificate,
)
from attendance.mpesa.results import (
    ResultFormatError,
    account_balances,
    b2c_payout,
    parse_result,
    transaction_status,
)
from attendance.mpesa.simulator import DarajaSimulator
from attendance.mpesa.transport import DarajaError

D = Decimal


class ResultSink:
    """A ResultURL on loopback: every body POSTed to it, in order, by path."""

    def __init__(self):
        self.bodies: queue.Queue = queue.Queue()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                sink.bodies.put((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, timeout=5.0):
        return self.bodies.get(timeout=timeout)

    def empty_for(self, seconds):
        try:
            self.bodies.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sim():
    simulator = DarajaSimulator(callback_delay=0.05).start()
    simulator.state.b2c.slow_answer_seconds = 2.0
    yield simulator
    simulator.stop()


@pytest.fixture
def sink():
    receiver = ResultSink()
    yield receiver
    receiver.stop()


@pytest.fixture
def client(sim):
    config = DarajaConfig(
        base_url=sim.url,
        consumer_key="sim-consumer-key",
        consumer_secret="sim-consumer-secret",
        short_code="600997",
        pass_key="",
        read_timeout=1.0,
    )
    return B2CClient(config, cache=LocMemCache(f"b2c-{uuid.uuid4()}", {}))


@pytest.fixture
def initiator(sim):
    credential = security_credential("Sim#Initiator1", sim.state.b2c.certificate)
    return Initiator(name="sim-initiator", security_credential=credential)


def _pay(client, initiator, sink, phone, amount=1500, ocid=None):
    ocid = ocid or str(uuid.uuid4())
    accepted = client.b2c_payment(
        initiator=initiator,
        originator_conversation_id=ocid,
        phone=phone,
        amount=amount,
        remarks="Pay run Nov 2026",
        result_url=f"{sink.url}/result",
        queue_timeout_url=f"{sink.url}/timeout",
    )
    return ocid, accepted


def test_the_credential_is_pkcs1_v15_random_each_time_and_decrypts_to_the_password():
    certificate, key = self_signed_certificate()
    first = security_credential("Pa#ss&word", certificate)
    second = security_credential("Pa#ss&word", certificate)
    assert first != second  # random padding: compare by decrypting, never as strings
    assert decrypt_credential(first, key) == decrypt_credential(second, key) == "Pa#ss&word"
    with pytest.raises(CredentialError):
        security_credential("x", b"not a certificate")


def test_a_payout_is_accepted_then_its_result_says_paid_with_receipt_and_balances(
    client, initiator, sink
):
    ocid, accepted = _pay(client, initiator, sink, "0712340000")
    assert accepted.conversation_id.startswith("AG_")
    assert accepted.originator_conversation_id == ocid
    path, body = sink.next()
    assert path == "/result"
    payout = b2c_payout(parse_result(body))
    assert payout.result.succeeded and payout.result.originator_conversation_id == ocid
    assert payout.amount == D("1500") and len(payout.receipt) == 10
    assert payout.receiver == "254712340000 - SIMULATED CUSTOMER"
    assert payout.completed_at is not None and payout.utility_balance == D("998500.00")


@pytest.mark.parametrize(
    ("phone", "code"),
    [("0712340001", "1"), ("0712342001", "2001"), ("0712342040", "2040")],
)
def test_failed_payouts_carry_a_transaction_id_yet_are_not_paid(
    client, initiator, sink, phone, code
):
    _pay(client, initiator, sink, phone)
    _, body = sink.next()
    result = parse_result(body)
    assert body["Result"]["TransactionID"]  # present, and no sign of success
    assert (result.result_code, result.succeeded) == (code, False)
    assert b2c_payout(result).receipt == ""


def test_a_wrong_credential_is_refused_as_daraja_does_in_the_result(client, sink, sim):
    other_certificate, _ = self_signed_certificate("someone else")
    wrong = Initiator("sim-initiator", security_credential("Sim#Initiator1", other_certificate))
    _pay(client, wrong, sink, "0712340000")
    _, body = sink.next()
    assert parse_result(body).result_code == "2001"
    assert sim.state.b2c.utility_balance == D("1000000.00")  # nothing moved


def test_a_repeated_originator_conversation_id_is_refused_as_a_duplicate(
    client, initiator, sink, sim
):
    ocid, _ = _pay(client, initiator, sink, "0712340000")
    with pytest.raises(DarajaError) as refused:
        _pay(client, initiator, sink, "0712340000", ocid=ocid)
    assert refused.value.code == "duplicate"
    assert sim.state.b2c.snapshot()["b2c_requests_per_id"][ocid] == 2


def test_a_post_answered_after_the_timeout_may_have_paid_and_is_never_resent(
    client, initiator, sink, sim
):
    with pytest.raises(DarajaError) as unknown:
        _pay(client, initiator, sink, "0712345041")
    assert unknown.value.may_have_reached_customer
    _, body = sink.next()  # the money moved anyway
    assert parse_result(body).succeeded
    assert list(sim.state.b2c.snapshot()["b2c_requests_per_id"].values()) == [1]


def test_a_lost_result_is_found_by_transaction_status(client, initiator, sink):
    ocid, _ = _pay(client, initiator, sink, "0712340003")
    assert sink.empty_for(0.5)  # no result comes
    client.transaction_status(
        initiator=initiator,
        originator_conversation_id=ocid,
        result_url=f"{sink.url}/status",
        queue_timeout_url=f"{sink.url}/status-timeout",
    )
    path, body = sink.next()
    status = transaction_status(parse_result(body))
    assert path == "/status"
    assert status.original_conversation_id == ocid  # the parameter, not the envelope
    assert status.paid and status.amount == D("1500") and len(status.receipt) == 10


def test_a_queue_timeout_goes_to_its_url_and_status_says_it_expired(client, initiator, sink):
    ocid, _ = _pay(client, initiator, sink, "0712340008")
    path, body = sink.next()
    assert path == "/timeout"
    assert not parse_result(body).succeeded
    client.transaction_status(
        initiator=initiator,
        originator_conversation_id=ocid,
        result_url=f"{sink.url}/status",
        queue_timeout_url=f"{sink.url}/status",
    )
    status = transaction_status(parse_result(sink.next()[1]))
    assert status.not_paid and status.state == "Expired"


def test_account_balance_reads_the_utility_account_by_name(client, initiator, sink, sim):
    sim.state.b2c.utility_balance = D("228037.00")
    client.account_balance(
        initiator=initiator, result_url=f"{sink.url}/balance", queue_timeout_url=sink.url
    )
    balances = account_balances(parse_result(sink.next()[1]))
    assert balances["Utility Account"] == D("228037.00")
    assert balances["Charges Paid Account"] == D("-1540.00")


@pytest.mark.parametrize(
    "body",
    [None, [], {"Result": "x"}, {"Result": {}}, {"Result": {"ResultCode": {"a": 1}}}],
)
def test_bodies_that_are_not_results_are_refused(body):
    with pytest.raises(ResultFormatError):
        parse_result(body)


def test_results_read_codes_as_strings_and_one_parameter_as_an_object():
    result = parse_result(
        {
            "Result": {
                "ResultType": "0",
                "ResultCode": "0",
                "OriginatorConversationID": "x",
                "ResultParameters": {"ResultParameter": {"Key": "TransactionAmount", "Value": 10}},
            }
        }
    )
    assert result.succeeded and b2c_payout(result).amount == D("10")


def test_bad_input_is_refused_before_anything_is_sent(client, initiator, sink, sim):
    from attendance.mpesa.client import DarajaValidationError

    for kwargs in ({"amount": 5}, {"amount": "12.50"}, {"phone": "12345"}):
        with pytest.raises(DarajaValidationError):
            _pay(client, initiator, sink, **{"phone": "0712340000", **kwargs})
    assert sim.state.b2c.snapshot()["b2c"] == 0
