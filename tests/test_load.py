"""The load test's short run: scripts/load with a few devices, zero drift and no unexpected error.

scripts/load starts the demo under gunicorn and locust (benchmarks/load/), all on loopback, here on a database
of its own on the test cluster; docs/benchmarks.md has the figures of the long runs. LOAD_USERS and
LOAD_SECONDS change the short run (default 10 devices for 15 seconds).
"""

import os
import subprocess
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.servers, pytest.mark.postgres]


@pytest.fixture
def load_database():
    """A fresh database on the test cluster for the demo, dropped afterwards."""
    cluster, name = os.environ["DATABASE_URL"].rsplit("/", 1)[0], f"offline_sync_load_{os.getpid()}"
    with psycopg.connect(f"{cluster}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{cluster}/{name}"
    with psycopg.connect(f"{cluster}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_devices_under_load_end_with_exactly_the_servers_records(tmp_path, load_database):
    users, seconds = os.environ.get("LOAD_USERS", "10"), os.environ.get("LOAD_SECONDS", "15")
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    run = subprocess.run(
        [ROOT / "scripts/load", "--users", users, "--seconds", seconds, "--spawn-rate", users, "--out", tmp_path],
        capture_output=True,
        text=True,
        env={**env, "DATABASE_URL": load_database},
        timeout=600,
    )
    assert run.returncode == 0, f"scripts/load failed:\n{run.stdout[-5000:]}\n{run.stderr[-5000:]}"
    assert f"{users} devices," in run.stdout, run.stdout
    assert "drifted devices: 0; unexpected errors: 0" in run.stdout, run.stdout
    assert (tmp_path / "stats_stats.csv").exists()
