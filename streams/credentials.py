"""The worker's Kafka security: ``Settings`` -> Faust ``broker_credentials``.

The same settings as every kafka-python client (``Settings.kafka_options()``): the
protocol, a SASL mechanism, user and password, and TLS files (a CA bundle to verify the
brokers; a client certificate and key for mutual TLS).
"""

from __future__ import annotations

import ssl

from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from schemas.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verify the brokers (with ``kafka_ssl_cafile`` if set); present a client certificate.

    Raises ValueError naming the setting whose file is missing.
    """
    for name in ("cafile", "certfile", "keyfile"):
        path = getattr(settings, f"kafka_ssl_{name}")
        if path is not None and not path.is_file():
            raise ValueError(f"PHASEGATE_KAFKA_SSL_{name.upper()}: no file at {path}")
    cafile = settings.kafka_ssl_cafile
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(cafile) if cafile else None
    )
    if settings.kafka_ssl_certfile is not None:
        keyfile = settings.kafka_ssl_keyfile
        context.load_cert_chain(str(settings.kafka_ssl_certfile), str(keyfile) if keyfile else None)
    return context


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
