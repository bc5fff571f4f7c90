"""Kafka security settings: incomplete or stray configuration is refused, and both client libraries get it all."""

from __future__ import annotations

import secrets
import shutil
import ssl
import subprocess
from pathlib import Path

import faust
import pytest
from faust.types.auth import AuthProtocol
from pydantic import SecretStr, ValidationError

from streams.kafka_auth import faust_credentials, ssl_context
from streams.settings import Settings

# Fresh each run, so a leak cannot hide behind a string that happens to appear elsewhere.
PASSWORD = f"pw-{secrets.token_hex(12)}"
KEY_PASSWORD = f"key-{secrets.token_hex(12)}"

SASL = {
    "kafka_security_protocol": "SASL_PLAINTEXT",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "alice",
    "kafka_sasl_password": PASSWORD,
}


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, encrypted with KEY_PASSWORD (made by the openssl tool)."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl command is needed to make a test certificate"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "client.pem", folder / "client.key"
    subprocess.run(  # noqa: S603 - fixed argv
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "1",
         "-subj", "/CN=loanwatch-test", "-keyout", str(key), "-out", str(cert), "-passout", f"pass:{KEY_PASSWORD}"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def _error_text(**values: object) -> str:
    with pytest.raises(ValidationError) as info:
        Settings(**values)  # type: ignore[arg-type]
    return str(info.value)


@pytest.mark.parametrize("missing", ["kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"])
def test_incomplete_sasl_names_the_missing_field(missing: str) -> None:
    values = {k: v for k, v in SASL.items() if k != missing}
    text = _error_text(**values)
    assert missing in text
    assert PASSWORD not in text


def test_sasl_credentials_without_a_sasl_protocol_are_refused() -> None:
    text = _error_text(**{**SASL, "kafka_security_protocol": "SSL"})
    assert "kafka_sasl_mechanism, kafka_sasl_username, kafka_sasl_password set" in text
    assert PASSWORD not in text


@pytest.mark.parametrize("field", ["kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"])
def test_missing_ssl_file_is_refused_naming_the_field(field: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(kafka_security_protocol="SSL", **{field: tmp_path / "absent.pem"})  # type: ignore[arg-type]
    error = info.value.errors()[0]
    assert error["loc"] == (field,)
    assert "absent.pem" in error["msg"]


def test_ssl_files_without_tls_are_refused(client_cert: tuple[Path, Path]) -> None:
    cert, _ = client_cert
    assert "kafka_ssl_cafile set, but kafka_security_protocol=SASL_PLAINTEXT" in _error_text(
        **SASL, kafka_ssl_cafile=cert
    )


def test_client_certificate_and_key_go_together(client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    assert "go together" in _error_text(kafka_security_protocol="SSL", kafka_ssl_certfile=cert)
    assert "go together" in _error_text(kafka_security_protocol="SSL", kafka_ssl_keyfile=key)
    text = _error_text(kafka_security_protocol="SSL", kafka_ssl_key_password=KEY_PASSWORD)
    assert "kafka_ssl_key_password set without kafka_ssl_keyfile" in text
    assert KEY_PASSWORD not in text


def test_env_variables_reach_the_settings(monkeypatch: pytest.MonkeyPatch, client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    env = {
        "LOANWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "LOANWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "LOANWATCH_KAFKA_SASL_USERNAME": "alice",
        "LOANWATCH_KAFKA_SASL_PASSWORD": PASSWORD,
        "LOANWATCH_KAFKA_SSL_CAFILE": str(cert),
        "LOANWATCH_KAFKA_SSL_CERTFILE": str(cert),
        "LOANWATCH_KAFKA_SSL_KEYFILE": str(key),
        "LOANWATCH_KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD,
        "LOANWATCH_KAFKA_SSL_CHECK_HOSTNAME": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.kafka_ssl_keyfile == key and settings.kafka_ssl_check_hostname is False
    exported = settings.to_env()  # what a worker started from this process receives
    assert {name: exported[name] for name in env} == {**env, "LOANWATCH_KAFKA_SSL_CHECK_HOSTNAME": "False"}


def test_confluent_config_uses_librdkafka_names(client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    settings = Settings(
        **SASL | {"kafka_security_protocol": "SASL_SSL"},  # type: ignore[arg-type]
        kafka_bootstrap="b1:9093",
        kafka_ssl_cafile=cert,
        kafka_ssl_certfile=cert,
        kafka_ssl_keyfile=key,
        kafka_ssl_key_password=KEY_PASSWORD,
    )
    assert settings.confluent_config() == {
        "bootstrap.servers": "b1:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(cert),
        "ssl.certificate.location": str(cert),
        "ssl.key.location": str(key),
        "ssl.key.password": KEY_PASSWORD,
        "ssl.endpoint.identification.algorithm": "https",
    }


def test_plaintext_config_carries_no_tls_keys() -> None:
    conf = Settings(kafka_bootstrap="b1:9092").confluent_config()
    assert not [key for key in conf if key.startswith(("ssl.", "sasl."))]


def test_without_a_ca_file_the_system_trust_store_is_used() -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_bootstrap="b1:9093", kafka_ssl_check_hostname=False)
    assert "ssl.ca.location" not in settings.confluent_config()
    assert settings.confluent_config()["ssl.endpoint.identification.algorithm"] == "none"
    context = ssl_context(settings)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    assert context.cert_store_stats() == ssl.create_default_context().cert_store_stats()


def test_ssl_context_loads_the_ca_and_the_encrypted_client_key(client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    settings = Settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=cert, kafka_ssl_certfile=cert, kafka_ssl_keyfile=key,
        kafka_ssl_key_password=KEY_PASSWORD,
    )
    context = ssl_context(settings)
    assert context is not None and context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "loanwatch-test"),),)]
    wrong = settings.model_copy(update={"kafka_ssl_key_password": SecretStr("not-the-password")})
    with pytest.raises(ssl.SSLError):
        ssl_context(wrong)


def test_faust_credentials_follow_the_protocol(client_cert: tuple[Path, Path]) -> None:
    cert, _ = client_cert
    assert faust_credentials(Settings()) is None

    tls = faust_credentials(Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=cert))
    assert isinstance(tls, faust.SSLCredentials) and tls.protocol is AuthProtocol.SSL

    sasl = faust_credentials(Settings(**SASL))  # type: ignore[arg-type]
    assert isinstance(sasl, faust.SASLCredentials)
    assert (sasl.protocol, sasl.mechanism.value) == (AuthProtocol.SASL_PLAINTEXT, "SCRAM-SHA-512")
    assert sasl.username == "alice"
    assert sasl.password == PASSWORD and sasl.ssl_context is None
    assert PASSWORD not in repr(sasl)

    over_tls = faust_credentials(Settings(**SASL | {"kafka_security_protocol": "SASL_SSL"}))  # type: ignore[arg-type]
    assert isinstance(over_tls, faust.SASLCredentials)
    assert over_tls.protocol is AuthProtocol.SASL_SSL and over_tls.ssl_context is not None


def test_secrets_stay_out_of_repr_and_json(client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    settings = Settings(
        **SASL | {"kafka_security_protocol": "SASL_SSL"},  # type: ignore[arg-type]
        kafka_ssl_certfile=cert, kafka_ssl_keyfile=key, kafka_ssl_key_password=KEY_PASSWORD,
    )
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert PASSWORD not in text and KEY_PASSWORD not in text
