"""The deployment examples: each instance file loads as written, and the webserver serves the
code location from `workspace.yaml`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from ledger_pipeline.core.registry import Registry
from ledger_pipeline.storage.api_keys import ApiKeyStore
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import jsonl, raw_event, records

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "sqlite": REPO_ROOT / "deploy" / "dagster.yaml",
    "postgres": REPO_ROOT / "deploy" / "dagster.postgres.yaml",
}

STARTUP_SECONDS = 120
SHUTDOWN_SECONDS = 30


@dg.asset
def heartbeat() -> dg.MaterializeResult:
    """A trivial asset: one run's worth of writes to an instance."""
    return dg.MaterializeResult(metadata={"beats": dg.MetadataValue.int(1)})


@pytest.fixture
def dagster_postgres_database(postgres_url, monkeypatch) -> str:
    """A fresh PostgreSQL database for Dagster's own tables, named by the `DAGSTER_PG_*` vars
    of deploy/dagster.postgres.yaml, on the server of `postgres_url`; dropped after the test."""
    url = sa.engine.make_url(postgres_url)
    name = f"dagster_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url.set(query={}), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'create database "{name}"'))

    monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_DB", name)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    yield name

    with engine.connect() as connection:
        connection.execute(sa.text(f'drop database "{name}" with (force)'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def example_instance(request, tmp_path, monkeypatch):
    """The instance of one example file, copied into a fresh DAGSTER_HOME as the docs say."""
    if request.param == "postgres":
        request.getfixturevalue("dagster_postgres_database")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(EXAMPLES[request.param], home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_each_example_queues_two_runs_at_most_and_one_ledger_run_per_kind(example_instance):
    coordinator = example_instance.run_coordinator

    assert isinstance(coordinator, dg.QueuedRunCoordinator)
    queue = coordinator.get_run_queue_config()
    assert queue.max_concurrent_runs == 2
    assert queue.tag_concurrency_limits == [
        {"key": "ledger/posting", "limit": 1},
    ]


def test_each_example_retries_a_crashed_run_once_and_monitors_run_starts(example_instance):
    assert example_instance.run_retries_enabled
    assert example_instance.run_retries_max_retries == 1
    assert not example_instance.run_retries_retry_on_asset_or_op_failure
    assert example_instance.run_monitoring_enabled
    assert example_instance.run_monitoring_start_timeout_seconds == 180
    assert example_instance.run_monitoring_cancel_timeout_seconds == 180
    assert example_instance.run_monitoring_max_resume_run_attempts == 0


def test_each_example_stores_a_run_and_reads_it_back(example_instance):
    result = dg.materialize([heartbeat], instance=example_instance)

    [run] = example_instance.get_runs()
    assert run.run_id == result.run_id
    assert run.status == dg.DagsterRunStatus.SUCCESS
    latest = example_instance.get_latest_materialization_event(dg.AssetKey("heartbeat"))
    assert latest.run_id == result.run_id


def test_the_sqlite_example_keeps_its_storage_under_dagster_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(EXAMPLES["sqlite"], home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    with dg.DagsterInstance.from_config(str(home)) as instance:
        dg.materialize([heartbeat], instance=instance)

    assert (home / "history" / "runs.db").is_file()
    assert (home / "schedules" / "schedules.db").is_file()


# The webserver


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(base_url: str, query: str) -> dict:
    response = requests.post(f"{base_url}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


LOCATIONS_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""

ASSET_GRAPH_QUERY = """
{
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
}
"""


def wait_until_ready(
    process: subprocess.Popen, log: Path, server: str, ready: Callable[[], bool]
) -> None:
    """Waits until `ready()` is true (a server that does not answer yet is not), or fails the
    test with the server's output when it exits or takes longer than `STARTUP_SECONDS`."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{server} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if ready():
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    pytest.fail(f"{server} did not serve within {STARTUP_SECONDS} s:\n{log.read_text()}")


def wait_until_serving(process: subprocess.Popen, base_url: str, log: Path) -> None:
    """Waits until the webserver answers and the code location is loaded, or fails the test."""

    def loaded() -> bool:
        requests.get(f"{base_url}/server_info", timeout=5).raise_for_status()
        [location] = graphql(base_url, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
        load_error = location["locationOrLoadError"] or {}
        if load_error.get("__typename") == "PythonError":
            pytest.fail(f"the code location failed to load: {load_error['message']}")
        return location["loadStatus"] == "LOADED"

    wait_until_ready(process, log, "dagster-webserver", loaded)


def stop(process: subprocess.Popen) -> None:
    """Stops the webserver, which stops its code server; kills whatever of its group remains."""
    process.terminate()
    try:
        process.wait(timeout=SHUTDOWN_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SHUTDOWN_SECONDS)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def webserver(tmp_path) -> str:
    """`dagster-webserver -w workspace.yaml` on a free loopback port, with the SQLite example
    instance and a ledger holding one landed event; yields its base URL."""
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with LedgerStore(ledger_url, ZoneInfo("UTC")) as store:
        store.land(records(jsonl(raw_event("e1", occurred_at="2024-11-15T09:00:00+00:00"))))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(EXAMPLES["sqlite"], home / "dagster.yaml")

    environment = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LEDGER_DATABASE_URL": ledger_url,
        "LEDGER_TIMEZONE": "UTC",
        "LEDGER_INBOX": str(tmp_path / "inbox"),
    }
    environment.pop("LEDGER_PARTITIONS_START", None)
    port = free_port()
    # `python -m dagster_webserver` is the `dagster-webserver` command of this interpreter.
    command = [sys.executable, "-m", "dagster_webserver"]
    command += ["-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    log = tmp_path / "webserver.log"

    with log.open("w") as output:
        # A session of its own, so that the code server it starts can be found and stopped.
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_serving(process, base_url, log)
            yield base_url
        finally:
            stop(process)


def test_the_webserver_serves_the_ledger_lineage_and_its_checks(webserver):
    nodes = graphql(webserver, ASSET_GRAPH_QUERY)["assetNodes"]

    parents = {
        "/".join(node["assetKey"]["path"]): [
            "/".join(key["path"]) for key in node["dependencyKeys"]
        ]
        for node in nodes
    }
    checks = {
        "/".join(node["assetKey"]["path"]): sorted(
            (check["name"], check["blocking"]) for check in node["assetChecksOrError"]["checks"]
        )
        for node in nodes
    }
    ledger_assets = ["order_events", "ledger_entries", "daily_ledger_totals"]
    assert {key: parents[key] for key in ledger_assets} == {
        "order_events": [],
        "ledger_entries": ["order_events"],
        "daily_ledger_totals": ["ledger_entries"],
    }
    assert {key: checks[key] for key in ledger_assets} == {
        "order_events": [],
        "ledger_entries": [
            ("entries_match_schema", True),
            ("every_event_balances_per_currency", True),
        ],
        "daily_ledger_totals": [],
    }


# The reporting API server


def test_the_api_server_logs_which_key_changed_a_registry_and_never_the_key(tmp_path):
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with LedgerStore(ledger_url, ZoneInfo("UTC")) as store:
        created = ApiKeyStore(store).create("on call", "manage")
        RegistryStore(store).create(Registry(name="books", url="https://example.com/hooks"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # `ledger-pipeline serve` with no --log-level, as an operator starts it.
    command = [sys.executable, "-c", "from ledger_pipeline.cli import app; app()"]
    command += ["serve", "--port", str(port)]
    log = tmp_path / "serve.log"

    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env={**os.environ, "LEDGER_DATABASE_URL": ledger_url, "LEDGER_TIMEZONE": "UTC"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_ready(process, log, "ledger-pipeline serve", lambda: answers(base_url))
            response = requests.post(
                f"{base_url}/registries/books/disable",
                headers={"Authorization": f"Bearer {created.token}"},
                timeout=30,
            )
        finally:
            stop(process)

    assert response.status_code == 200
    written = log.read_text()
    assert f"API key {created.api_key.id} disabled registry books" in written
    assert created.token.split("_", 2)[2] not in written  # lpk_<id>_<secret>


def answers(base_url: str) -> bool:
    requests.get(f"{base_url}/openapi.json", timeout=5).raise_for_status()
    return True
