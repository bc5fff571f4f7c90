"""deploy/clickhouse/users.d: hashed passwords only, a writer without DDL, a read-only analyst."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 - our own file, not untrusted input
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = ET.parse(REPO / "deploy/clickhouse/users.d/loanwatch.xml").getroot()  # noqa: S314


def test_users_have_sha256_passwords_and_only_the_loanwatch_database() -> None:
    users = ROOT.find("users")
    assert users is not None
    assert sorted(u.tag for u in users) == ["loanwatch_analyst", "loanwatch_writer"]
    for user in users:
        assert user.find("password") is None, f"{user.tag}: a plain password"
        digest = user.findtext("password_sha256_hex") or ""
        assert re.fullmatch(r"[0-9a-f]{64}", digest), user.tag
        assert [d.text for d in user.iterfind("allow_databases/database")] == ["loanwatch"]
        assert user.findtext("profile") == user.tag
        assert "::/0" not in [ip.text for ip in user.iterfind("networks/ip")]


def test_the_writer_may_not_run_ddl_and_the_analyst_may_only_read() -> None:
    assert ROOT.findtext("profiles/loanwatch_writer/allow_ddl") == "0"
    assert ROOT.findtext("profiles/loanwatch_writer/readonly") == "0"
    assert ROOT.findtext("profiles/loanwatch_analyst/readonly") == "1"
