"""M-Pesa (Daraja): the HTTP client and the local simulator. No models here."""

from django.conf import settings
from django.core.cache import cache

from .client import HOSTS, DarajaClient, DarajaConfig


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


_clients: dict[DarajaConfig, DarajaClient] = {}


def daraja_client() -> DarajaClient:
    """The client for the current settings, one per process (it keeps a connection pool)."""
    config = daraja_config()
    client = _clients.get(config)
    if client is None:
        client = _clients[config] = DarajaClient(config, cache=cache)
    return client
