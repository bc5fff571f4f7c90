"""The local broker's SCRAM listener pieces: users the storage tool can parse, passwords kept out of text."""

from __future__ import annotations

import secrets

import pytest

from streams.local.kafka_sasl import SCRAM_MECHANISMS, ScramUser, format_arguments, listener_properties, redacted


@pytest.mark.parametrize(("name", "password"), [("al,ice", "ok-pw"), ("alice", "p]w"), ("alice", "a=b"), ("", "ok-pw")])
def test_users_the_storage_tool_would_misread_are_refused(name: str, password: str) -> None:
    with pytest.raises(ValueError, match="must match") as info:
        ScramUser(name, password)
    assert password not in str(info.value)


def test_every_user_gets_every_mechanism_and_text_is_redacted() -> None:
    users = [ScramUser("alice", secrets.token_urlsafe(16)), ScramUser("bob", secrets.token_urlsafe(16))]
    args = format_arguments(users)
    assert args[::2] == ["--add-scram"] * (len(users) * len(SCRAM_MECHANISMS))
    pairs = {(value.split("=", 1)[0], value.split("name=", 1)[1].split(",")[0]) for value in args[1::2]}
    assert pairs == {(m, u.name) for m in SCRAM_MECHANISMS for u in users}
    shown = redacted(" ".join(args), users)
    assert all(user.password not in shown and user.name in shown for user in users)
    assert all(user.password not in repr(user) for user in users)


def test_listener_enables_each_mechanism_with_a_login_module() -> None:
    props = listener_properties()
    assert props["sasl.enabled.mechanisms"].split(",") == list(SCRAM_MECHANISMS)
    jaas = [key for key in props if key.endswith(".sasl.jaas.config")]
    expected = [f"listener.name.sasl_plaintext.{m.lower()}.sasl.jaas.config" for m in SCRAM_MECHANISMS]
    assert sorted(jaas) == sorted(expected)
