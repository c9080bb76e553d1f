"""Kafka TLS from ``Settings``, and why a broker that listens did not let a client in.

:func:`ssl_context` is the TLS side of the settings for clients that take a context
(aiokafka through Faust, the check below); kafka-python takes the same files through
``Settings.kafka_options()``; :func:`aiokafka_options` gives an aiokafka client (the
sink's DLQ producer) the same settings, and :func:`librdkafka_options` a confluent-kafka
client (the sink's consumer, the Emitter's producer).

kafka-python and aiokafka report a refused TLS handshake or SASL login as "cannot
bootstrap", the same as a broker that is down. :func:`refusal` tells them apart for the
commands' error line: nothing listens (None: the usual "no broker" message fits), the
broker's certificate is not trusted (the verification error), or the broker did not take
the configured SASL login or client certificate. It names settings and the user, never
the password.

:func:`hide_from_kafka_logs` masks the SASL password in kafka-python's DEBUG logs, which
carry it (``Settings.kafka_options()`` calls it).
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

from schemas.settings import Settings


class _HidePasswords(logging.Filter):
    """At DEBUG kafka-python logs its admin client's configuration and the SASL exchange
    (objects and raw frames), the password in each: it goes out masked."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = text
        for secret in self.secrets:
            masked = masked.replace(secret, "**********")
        if masked != text:
            record.msg, record.args = masked, ()
        return True


_KAFKA_LOGS = _HidePasswords()


def hide_from_kafka_logs(password: str) -> None:
    """Mask ``password`` (and its form in a bytes repr) in kafka-python's debug logs."""
    if not password:
        return
    _KAFKA_LOGS.secrets |= {password, repr(password.encode())[2:-1]}
    for name in ("kafka.admin.client", "kafka.protocol.parser", "kafka.net.connection"):
        logger = logging.getLogger(name)
        if _KAFKA_LOGS not in logger.filters:
            logger.addFilter(_KAFKA_LOGS)


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


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Security options for an aiokafka client: what ``Settings.kafka_options()`` gives
    kafka-python, with the TLS files as :func:`ssl_context` (empty for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = None if password is None else password.get_secret_value()
    return options


def librdkafka_options(settings: Settings) -> dict[str, Any]:
    """``Settings.kafka_options()`` under librdkafka's names (empty for PLAINTEXT)."""
    names = {
        "security_protocol": "security.protocol",
        "sasl_mechanism": "sasl.mechanism",
        "sasl_plain_username": "sasl.username",
        "sasl_plain_password": "sasl.password",
        "ssl_cafile": "ssl.ca.location",
        "ssl_certfile": "ssl.certificate.location",
        "ssl_keyfile": "ssl.key.location",
    }
    return {names[k]: v for k, v in settings.kafka_options().items()}


class _DebugOnly:
    """A ``logger`` for librdkafka: its lines at DEBUG on the ``librdkafka`` logger (the
    clients' owners say what failed, once per interval)."""

    def __init__(self) -> None:
        self._log = logging.getLogger("librdkafka")

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log.debug(msg, *args)


LIBRDKAFKA_LOGGER = _DebugOnly()


def refusal(settings: Settings, timeout: float = 3.0) -> str | None:
    """Why the broker at ``settings.bootstrap_servers`` refused us; None if no security is
    configured or none of its addresses listens."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    listening = next((a for a in _addresses(settings) if _listens(a, timeout)), None)
    if listening is None:
        return None
    where = "{}:{}".format(*listening)
    if protocol.endswith("SSL"):
        problem = _tls_problem(settings, listening, timeout)
        if problem:
            return f"TLS with the Kafka broker at {where} failed: {problem}"
    if protocol.startswith("SASL"):
        return (
            f"the Kafka broker at {where} did not accept the SASL "
            f"{settings.kafka_sasl_mechanism or 'PLAIN'} login of user "
            f"{settings.kafka_sasl_username!r}: check PHASEGATE_KAFKA_SASL_MECHANISM, "
            "PHASEGATE_KAFKA_SASL_USERNAME and PHASEGATE_KAFKA_SASL_PASSWORD"
        )
    return (
        f"the Kafka broker at {where} did not accept this TLS client: check its certificate "
        "(PHASEGATE_KAFKA_SSL_CERTFILE, PHASEGATE_KAFKA_SSL_KEYFILE)"
    )


def _addresses(settings: Settings) -> list[tuple[str, int]]:
    out = []
    for address in settings.bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        if host and port.isdigit():
            out.append((host.strip("[]"), int(port)))
    return out


def _listens(address: tuple[str, int], timeout: float) -> bool:
    try:
        socket.create_connection(address, timeout).close()
    except OSError:
        return False
    return True


def _tls_problem(settings: Settings, address: tuple[str, int], timeout: float) -> str | None:
    try:
        context = ssl_context(settings)
    except (ValueError, OSError) as exc:  # a missing or unreadable file
        return str(exc)
    try:
        with (
            socket.create_connection(address, timeout) as raw,
            context.wrap_socket(raw, server_hostname=address[0]),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        hint = "its CA" if settings.kafka_ssl_cafile is None else "the CA that signed it"
        return f"{exc.verify_message} (set PHASEGATE_KAFKA_SSL_CAFILE to {hint})"
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
    except OSError as exc:
        return str(exc)
