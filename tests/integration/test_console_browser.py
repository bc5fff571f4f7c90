"""The console end to end in headless Chromium (Debian's package, driven by Playwright), on both ClickHouse engines.

Rows are written by the writer's own row builders (tests/integration/console_seed.py). With the 18.16 server the
console runs as ``loanwatch console`` in a subprocess, with a profile API URL nobody answers; chdb serves one
data path per process, so on chdb the same app runs in this process (a thread with its own event loop), sharing
the engine with the test's inserts. Screenshots go to ``test-artifacts/console/``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, expect, sync_playwright

from schemas.outputs import TIERS
from streams.clickhouse.backend import ClickHouseBackend
from streams.clickhouse.schema import apply_ddl
from streams.console.filters import sql_string
from streams.console.server import ConsoleConfig, create_console_app
from tests.integration import console_seed as seed

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 30_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(base: str, proc: subprocess.Popen[bytes] | None, log: Path | None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"loanwatch console exited {proc.returncode}:\n{log.read_text() if log else ''}")
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=2) as response:  # noqa: S310 — local http
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the console did not answer at {base}:\n{log.read_text() if log else ''}")


class InProcessConsole:
    """The console app on a thread of its own (its own event loop), until :meth:`stop`."""

    def __init__(self, config: ConsoleConfig, port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(create_console_app(config))
        self._port = port
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=30)

    async def _serve(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@pytest.fixture
def console(
    clickhouse: tuple[ClickHouseBackend, str | None], tmp_path: Path
) -> Iterator[tuple[str, ClickHouseBackend, str]]:
    """(base URL, backend, engine name) of a console over freshly seeded tables."""
    backend, url = clickhouse
    apply_ddl(backend, backend.database)
    seed.seed(backend)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    if url is None:
        server = InProcessConsole(ConsoleConfig(backend, "embedded chdb"), port)
        server.start()
        try:
            _wait_until_up(base, None, None)
            yield base, backend, "chdb"
        finally:
            server.stop()
        return
    env = {
        **os.environ,
        "LOANWATCH_HOME": str(tmp_path / "home"),
        "LOANWATCH_CLICKHOUSE_URL": url,
        "LOANWATCH_CLICKHOUSE_DATABASE": backend.database,
        "LOANWATCH_PROFILE_API_URL": f"http://127.0.0.1:{_free_port()}",  # nobody listens there
    }
    log = tmp_path / "console.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "console", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(base, proc, log)
        yield base, backend, "server"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (deploy/local/run.sh does it)", pytrace=False)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield launched
        launched.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _rows(page: Page, selector: str) -> int:
    return page.locator(selector).count()


def test_feed_chart_top_rules_and_a_fresh_alert_without_reload(
    console: tuple[str, ClickHouseBackend, str], browser: Browser
) -> None:
    base, backend, engine = console
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/")
    alerts = page.locator("#alerts tbody tr")
    expect(alerts).to_have_count(len(seed.ALERTS), timeout=WAIT_MS)  # the replayed copy shows once
    for a in seed.ALERTS:
        expect(page.locator(f'#alerts tr[data-alert-id="{a.alert_id}"]')).to_have_count(1)
    newest = max(seed.ALERTS, key=lambda a: a.hours)
    expect(alerts.first).to_have_attribute("data-alert-id", newest.alert_id)

    # Chart: one series per tier, a point per bucket, the distinct alerts of each tier in its points.
    series = page.locator("#chart svg g.series")
    expect(series).to_have_count(len(TIERS))
    expected = seed.by_tier(seed.ALERTS)
    for tier in TIERS:
        points = page.locator(f'#chart svg g.series[data-tier="{tier}"] circle.point')
        assert points.count() > 1
        counts = [int(c) for c in points.evaluate_all("ps => ps.map(p => p.getAttribute('data-count'))")]
        assert sum(counts) == expected[tier], tier

    # Top rules: distinct alerts per rule, most first.
    for rule, count in seed.by_rule(seed.ALERTS).items():
        expect(page.locator(f'#top-rules tr[data-rule="{rule}"] td.alerts')).to_have_text(str(count))
    top = seed.by_rule(seed.ALERTS).most_common(1)[0]
    expect(page.locator("#top-rules tbody tr").first).to_have_attribute("data-rule", top[0])

    # Text from data stays text: the hostile reason is shown literally and runs nothing.
    expect(page.locator("#alerts tbody").get_by_text(seed.HOSTILE_REASON)).to_have_count(1)
    assert _rows(page, "#alerts img") == 0
    assert page.evaluate("window.__xss") is None
    _shot(page, f"feed-{engine}")

    # A fresh alert appears by polling; the marker proves the page was not reloaded.
    page.evaluate("window.__sameDocument = true")
    seed.insert_alerts(backend, (seed.FRESH,), offset=200)
    fresh = page.locator(f'#alerts tr[data-alert-id="{seed.FRESH.alert_id}"]')
    expect(fresh).to_have_count(1, timeout=WAIT_MS)
    expect(alerts.first).to_have_attribute("data-alert-id", seed.FRESH.alert_id)
    expect(page.locator('#top-rules tr[data-rule="fused_risk"] td.alerts')).to_have_text(
        str(seed.by_rule((*seed.ALERTS, seed.FRESH))["fused_risk"]), timeout=WAIT_MS
    )
    assert page.evaluate("window.__sameDocument") is True
    _shot(page, f"feed-fresh-alert-{engine}")
    page.close()


def test_feed_filters_by_tier_rule_and_product(
    console: tuple[str, ClickHouseBackend, str], browser: Browser
) -> None:
    base, _, _ = console
    page = browser.new_page()
    page.goto(base + "/?tier=warning")
    warnings = [a for a in seed.ALERTS if a.tier == "warning"]
    expect(page.locator("#alerts tbody tr")).to_have_count(len(warnings), timeout=WAIT_MS)
    expect(page.locator("#alerts tbody tr.tier-warning")).to_have_count(len(warnings))
    expect(page.locator("#chart svg g.series")).to_have_count(1)

    page.goto(base + "/?rule=multi_application_burst")
    bursts = [a for a in seed.ALERTS if a.rule == "multi_application_burst"]
    expect(page.locator("#alerts tbody tr")).to_have_count(len(bursts), timeout=WAIT_MS)

    page.goto(base + "/?product=credit_line")
    on_credit_line = [a for a in seed.ALERTS if a.evidence and seed.PRODUCT_OF[a.customer] == "credit_line"]
    rows = page.locator("#alerts tbody tr")
    expect(rows).to_have_count(len(on_credit_line), timeout=WAIT_MS)
    for a in on_credit_line:
        expect(page.locator(f'#alerts tr[data-alert-id="{a.alert_id}"]')).to_contain_text("credit_line")
    _shot(page, "feed-filtered-credit_line")

    page.goto(base + "/?tier=critical")
    expect(page.locator("#error")).to_contain_text("tier")
    page.close()


def test_customer_page_shows_timeline_alerts_limit_actions_rings_and_scores(
    console: tuple[str, ClickHouseBackend, str], browser: Browser
) -> None:
    base, _, engine = console
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/")
    expect(page.locator("#alerts tbody tr").first).to_be_visible(timeout=WAIT_MS)
    page.locator("#alerts tbody a", has_text="c_con_1").first.click()
    expect(page).to_have_url(base + "/customers/c_con_1")
    expect(page.locator("#customer")).to_have_text("Customer c_con_1")

    expect(page.locator("#timeline tbody tr")).to_have_count(seed.APPLICATIONS)
    expect(page.locator("#timeline")).to_contain_text("product=cash_loan")
    mine = [a for a in seed.ALERTS if a.customer == "c_con_1"]
    expect(page.locator("#customer-alerts tbody tr")).to_have_count(len(mine))
    expect(page.locator("#limit-actions tbody tr")).to_have_count(1)
    expect(page.locator("#limit-actions")).to_contain_text("freeze")
    expect(page.locator("#rings tbody tr")).to_have_count(1)
    expect(page.locator("#rings")).to_contain_text(seed.RING_ID)
    expect(page.locator("#score-chart svg g.series circle.point")).to_have_count(len(seed.SCORES))
    expect(page.locator("#headline")).to_contain_text(f"score {seed.SCORES[-1]:.3f}")
    expect(page.locator("#features")).to_contain_text("applications_30m")
    # Without a worker answering, the page says so and still shows everything ClickHouse knows.
    status = "unreachable" if engine == "server" else "not configured"
    expect(page.locator("#profile-api")).to_contain_text(f"profile API {status}")
    _shot(page, f"customer-{engine}")

    page.goto(base + "/customers/c_nobody")
    expect(page.locator("#unknown")).to_be_visible()
    response = page.goto(base + "/customers/bad'id")
    assert response is not None and response.status == 400
    page.close()


@pytest.mark.parametrize("text", ["it's", "back\\slash", "trailing\\", "\\'", "汉字 '预警'", "'; DROP TABLE x; --"])
def test_sql_literals_read_back_unchanged(clickhouse: tuple[ClickHouseBackend, str | None], text: str) -> None:
    backend, _ = clickhouse
    assert backend.query(f"SELECT {sql_string(text)}") == [(text,)]  # noqa: S608 — the literal under test
