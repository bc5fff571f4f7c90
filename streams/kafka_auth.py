"""Kafka security for Faust (aiokafka): the same settings that :meth:`Settings.confluent_config` hands librdkafka.

confluent-kafka takes file paths and a password; aiokafka takes an :class:`ssl.SSLContext` and Faust credentials,
built here so that both client libraries connect with the same CA, client certificate and host-name check.
"""

from __future__ import annotations

import ssl

import faust
from faust.types.auth import CredentialsT

from streams.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (None otherwise): the CA file, else the system trust store."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile is not None and settings.kafka_ssl_keyfile is not None:
        password = settings.kafka_ssl_key_password
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile),
            password=password.get_secret_value() if password is not None else None,
        )
    return context


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for the configured protocol (None for PLAINTEXT)."""
    context = ssl_context(settings)
    if not settings.kafka_security_protocol.startswith("SASL"):
        return faust.SSLCredentials(context) if context is not None else None
    username, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    if username is None or password is None or settings.kafka_sasl_mechanism is None:
        raise ValueError("SASL needs kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password")
    # SASLCredentials switches itself to SASL_SSL when it is given a context.
    return faust.SASLCredentials(
        username=username,
        password=password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=context,
    )
