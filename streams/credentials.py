"""The worker's Kafka security: ``Settings`` -> Faust ``broker_credentials``.

The same settings as every kafka-python client (``Settings.kafka_options()``): the
protocol, a SASL mechanism, user and password, and TLS files (a CA bundle to verify the
brokers; a client certificate and key for mutual TLS).
"""

from __future__ import annotations

from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from schemas.kafka_security import ssl_context
from schemas.settings import Settings

__all__ = ["broker_credentials", "ssl_context"]


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's credentials for ``settings``; None for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return SSLCredentials(context)
    password = settings.kafka_sasl_password
    return SASLCredentials(
        username=settings.kafka_sasl_username,
        password=None if password is None else password.get_secret_value(),
        ssl_context=context,  # SASL_SSL when a context is given, else SASL_PLAINTEXT
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
    )
