"""M-Pesa (Daraja): the HTTP client and the local simulator. No models here."""

import contextlib

from django.conf import settings
from django.core.cache import cache

from attendance import metrics
from attendance.redis_client import redis_client

from .b2c import B2CClient, Initiator
from .client import HOSTS, DarajaClient, DarajaConfig
from .credentials import security_credential
from .paybill import PaybillClient
from .rate import WAIT_NOTE_SECONDS, DarajaRate, RedisWindow, waiting_key


def daraja_config() -> DarajaConfig:
    return DarajaConfig(
        base_url=settings.MPESA_BASE_URL or HOSTS[settings.MPESA_ENVIRONMENT],
        consumer_key=settings.MPESA_CONSUMER_KEY,
        consumer_secret=settings.MPESA_CONSUMER_SECRET,
        short_code=settings.MPESA_BUSINESS_SHORT_CODE,
        pass_key=settings.MPESA_PASS_KEY,
        transaction_type=settings.MPESA_TRANSACTION_TYPE,
        party_b=settings.MPESA_TILL_NUMBER,
        connect_timeout=settings.MPESA_CONNECT_TIMEOUT,
        read_timeout=settings.MPESA_READ_TIMEOUT,
    )


# One client per kind and settings, per process (each keeps a connection pool).
_clients: dict[tuple[type, DarajaConfig], DarajaClient] = {}


def daraja_client() -> DarajaClient:
    """The client for the current settings, one per process (it keeps a connection pool)."""
    return _client(DarajaClient, daraja_config())


def paybill_client() -> PaybillClient:
    """C2B registration and Pull Transactions, on the STK app's credentials."""
    client = _client(PaybillClient, daraja_config())
    assert isinstance(client, PaybillClient)
    return client


def _client(kind: type[DarajaClient], config: DarajaConfig) -> DarajaClient:
    client = _clients.get((kind, config))
    if client is None:
        client = _clients[(kind, config)] = kind(
            config, cache=cache, rate=daraja_rate(), observe=metrics.observe_daraja
        )
    return client


_rates: dict[tuple, DarajaRate] = {}


def daraja_rate() -> DarajaRate:
    """The deployment's Daraja rate: in Redis when there is one (every process shares it)."""
    key = (
        settings.REDIS_URL,
        settings.DARAJA_RATE_PER_SECOND,
        tuple(sorted(settings.DARAJA_RATES.items())),
    )
    rate = _rates.get(key)
    if rate is None:
        window = RedisWindow(redis_client()) if settings.REDIS_URL else None
        rate = _rates[key] = DarajaRate(
            per_second=settings.DARAJA_RATE_PER_SECOND,
            overrides=settings.DARAJA_RATES,
            window=window,
            note=_note_waiting,
        )
    return rate


def _note_waiting(family: str, seconds: float) -> None:
    with contextlib.suppress(Exception):  # the cache is down: the note is only for a page
        cache.set(waiting_key(family), seconds, WAIT_NOTE_SECONDS)


def daraja_waiting(family: str) -> bool:
    """Has a call of `family` waited for the deployment's rate in the last few seconds?"""
    try:
        return cache.get(waiting_key(family)) is not None
    except Exception:
        return False


def b2c_config() -> DarajaConfig:
    return DarajaConfig(
        base_url=settings.MPESA_BASE_URL or HOSTS[settings.MPESA_ENVIRONMENT],
        consumer_key=settings.MPESA_B2C_CONSUMER_KEY,
        consumer_secret=settings.MPESA_B2C_CONSUMER_SECRET,
        short_code=settings.MPESA_B2C_SHORT_CODE,
        pass_key="",
        connect_timeout=settings.MPESA_CONNECT_TIMEOUT,
        read_timeout=settings.MPESA_READ_TIMEOUT,
    )


def b2c_client() -> B2CClient:
    client = _client(B2CClient, b2c_config())
    assert isinstance(client, B2CClient)
    return client


_initiators: dict[tuple[str, str, str], Initiator] = {}


def b2c_initiator() -> Initiator:
    """The API operator and a SecurityCredential made once per process (it may be reused)."""
    return _initiator(
        settings.MPESA_B2C_INITIATOR_NAME,
        settings.MPESA_B2C_INITIATOR_PASSWORD,
        "B2C is not configured: set MPESA_B2C_INITIATOR_NAME, MPESA_B2C_INITIATOR_PASSWORD "
        "and MPESA_B2C_CERTIFICATE.",
    )


def reversal_initiator() -> Initiator:
    """The operator with the "Org Reversals Initiator" role (the B2C one unless set)."""
    return _initiator(
        settings.MPESA_REVERSAL_INITIATOR_NAME or settings.MPESA_B2C_INITIATOR_NAME,
        settings.MPESA_REVERSAL_INITIATOR_PASSWORD or settings.MPESA_B2C_INITIATOR_PASSWORD,
        "Reversals are not configured: set MPESA_REVERSAL_INITIATOR_NAME and "
        "MPESA_REVERSAL_INITIATOR_PASSWORD (or the B2C ones) and MPESA_B2C_CERTIFICATE.",
    )


def _initiator(name: str, password: str, missing: str) -> Initiator:
    certificate = settings.MPESA_B2C_CERTIFICATE
    key = (name, password, certificate)
    if key not in _initiators:
        if not (name and password and certificate):
            raise ValueError(missing)
        if "-----BEGIN" in certificate:
            data = certificate.encode()
        else:
            with open(certificate, "rb") as file:
                data = file.read()
        _initiators[key] = Initiator(name, security_credential(password, data))
    return _initiators[key]
