"""The profile lookup API on real workers: GET /customers/{id} over HTTP after real events on the real broker.

Two workers share the partitions; whichever one is asked, the answer comes from the customer's owner.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.engine import EngineConfig
from schemas import serde
from schemas.behavior import LoanApplication, Login
from schemas.profile_api import ApiError, CustomerView
from streams.clickhouse.backend import open_backend
from streams.clickhouse.embedded import chdb_path_in_use
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
#: Loan applications per customer within 30 minutes; every customer also logs in once first.
APPLICATIONS = {f"c_api_{i}": i % 5 for i in range(10)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(port: int, path: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    except (OSError, http.client.HTTPException, ValueError):
        return 0, None  # not listening yet, or restarting
    finally:
        connection.close()


@pytest.fixture
def pipeline(kafka_bootstrap: str, chdb_dir: Path, tmp_path: Path) -> Iterator[Pipeline]:
    """The worker needs no ClickHouse here: tables go to embedded chdb only."""
    database = f"lwtest_{uuid.uuid4().hex[:10]}"
    backend = open_backend(None, database, chdb_path_in_use() or chdb_dir)
    settings = unique_settings(kafka_bootstrap, tmp_path / "w1", None, database, web_port=free_port())
    p = Pipeline(settings, backend)
    yield p
    p.close()
    backend.close()


def events() -> Iterator[tuple[str, bytes, bytes]]:
    for customer, n in APPLICATIONS.items():
        head = dict(customer_id=customer, device_id=f"d_{customer}", ip="10.1.2.3", channel="app_android")
        login = Login(event_id=f"{customer}-login", ts=T0, method="password", success=True, **head)
        yield "behavior", customer.encode(), serde.dumps(login)
        for k in range(n):
            app = LoanApplication(
                event_id=f"{customer}-app-{k}", ts=T0 + timedelta(minutes=1 + k), product="cash_loan",
                application_id=f"a_{customer}_{k}", amount=5000.0, term_months=12, **head,
            )
            yield "behavior", customer.encode(), serde.dumps(app)


def last_event(customer: str) -> datetime:
    return T0 + timedelta(minutes=APPLICATIONS[customer])


def start_second_worker(pipeline: Pipeline, port: int, home: Path) -> subprocess.Popen[bytes]:
    home.mkdir(parents=True)
    env = {
        **os.environ, **pipeline.settings.to_env(), "LOANWATCH_HOME": str(home), "LOANWATCH_WEB_PORT": str(port),
        "LOANWATCH_LOG_LEVEL": "INFO",
    }
    with (home / "worker.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def test_lookup_returns_what_the_events_imply_and_404_for_unknown(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    assert settings.web_port is not None
    port = settings.web_port
    pipeline.produce((getattr(settings.topics, t), k, v) for t, k, v in events())
    pipeline.start_worker()

    def all_seen() -> bool:
        pipeline.assert_worker_alive()
        answers = [get(port, f"/customers/{c}") for c in APPLICATIONS]
        return all(status == 200 and body["last_event_at"] is not None for status, body in answers) and all(
            CustomerView.model_validate(body).last_event_at == last_event(c)
            for c, (_, body) in zip(APPLICATIONS, answers, strict=True)
        )

    wait_for(all_seen, 120, "every customer's latest event through the API", pipeline.worker_log)

    notice = EngineConfig().burst.thresholds.notice
    for customer, n in APPLICATIONS.items():
        status, body = get(port, f"/customers/{customer}")
        assert status == 200
        view = CustomerView.model_validate(body)
        assert view.customer_id == customer
        assert view.features["30m"]["loan_applications"] == n
        assert view.features["24h"]["loan_applications"] == n
        assert view.features["30m"]["logins"] == 1
        assert view.features["30m"]["distinct_devices"] == 1
        assert view.rule_version == EngineConfig().version
        assert view.score is not None and view.grade is not None
        assert view.served_by == f"http://127.0.0.1:{port}"
        burst = [e for e in view.open_episodes if e.rule_id == "multi_application_burst"]
        assert (len(burst) == 1) == (n >= notice), (customer, n, view.open_episodes)

    status, body = get(port, "/customers/c_api_never_seen")
    assert status == 404
    assert ApiError.model_validate(body).error == "unknown_customer"
    # A raw mobile number is not a pseudonymous id: refused, not looked up.
    status, body = get(port, "/customers/13800138000")
    assert status == 400
    assert ApiError.model_validate(body).error == "invalid_customer_id"
    status, body = get(port, "/customers/c%20with%20space")
    assert status == 400


def test_any_worker_answers_with_the_owners_view(pipeline: Pipeline, tmp_path: Path) -> None:
    settings = pipeline.settings
    assert settings.web_port is not None
    first, second = settings.web_port, free_port()
    pipeline.produce((getattr(settings.topics, t), k, v) for t, k, v in events())
    pipeline.start_worker()
    worker = start_second_worker(pipeline, second, tmp_path / "w2")
    try:
        urls = {f"http://127.0.0.1:{first}", f"http://127.0.0.1:{second}"}

        def both_own_partitions_and_agree() -> bool:
            pipeline.assert_worker_alive()
            assert worker.poll() is None, (tmp_path / "w2" / "worker.log").read_text(errors="replace")[-3000:]
            status, owners = get(first, "/router/customer-state/")
            if status != 200 or set(owners) != urls:
                return False
            for customer in APPLICATIONS:
                a, b = get(first, f"/customers/{customer}"), get(second, f"/customers/{customer}")
                if a[0] != 200 or a != b:
                    return False
            return True

        wait_for(both_own_partitions_and_agree, 180, "two workers sharing partitions, agreeing", pipeline.worker_log)

        forwarded = 0
        for customer in APPLICATIONS:
            _, owner = get(first, f"/router/customer-state/{customer}/")
            for port in (first, second):
                status, body = get(port, f"/customers/{customer}")
                assert status == 200
                view = CustomerView.model_validate(body)
                assert view.served_by == owner, (customer, port)
                assert view.features["30m"]["loan_applications"] == APPLICATIONS[customer]
                forwarded += owner != f"http://127.0.0.1:{port}"
        # Ten customers over four partitions owned by two workers: each worker forwards some requests.
        assert forwarded == len(APPLICATIONS)
    finally:
        worker.terminate()
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
