import pytest
from pydantic import ValidationError

from schemas.settings import Settings


def test_plaintext_needs_no_kafka_options():
    assert Settings().kafka_options() == {}


def test_sasl_ssl_options_for_kafka_python(tmp_path):
    ca = tmp_path / "ca.pem"
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="phasegate",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=ca,
    )
    assert s.kafka_options() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "phasegate",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": str(ca),
    }


def test_secrets_never_show_in_repr_or_str():
    s = Settings(kafka_sasl_password="s3cret", clickhouse_url="clickhouse://u:hunter2@db:9000")
    for text in (repr(s), str(s)):
        assert "s3cret" not in text and "hunter2" not in text


def test_to_env_round_trips_including_secrets(monkeypatch):
    s = Settings(
        topic_prefix="x.",
        rolling_seconds=[60, 120],
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_password="s3cret",
    )
    for name, value in s.to_env().items():
        monkeypatch.setenv(name, value)
    back = Settings()
    assert back == s
    assert back.kafka_sasl_password.get_secret_value() == "s3cret"


def test_file_then_environment_precedence(tmp_path, monkeypatch):
    config = tmp_path / "phasegate.toml"
    config.write_text('topic_prefix = "file."\nwindow_seconds = 30\n')
    monkeypatch.setenv("PHASEGATE_CONFIG", str(config))
    monkeypatch.setenv("PHASEGATE_WINDOW_SECONDS", "10")
    s = Settings()
    assert (s.topic_prefix, s.window_seconds) == ("file.", 10)
    assert s.topics.results == "file.results"


def test_bad_values_name_the_field():
    with pytest.raises(ValidationError, match="kafka_security_protocol"):
        Settings(kafka_security_protocol="TLS")
    with pytest.raises(ValidationError, match="database"):
        Settings(database="drop table; --")
