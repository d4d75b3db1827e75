"""The load test's short run: scripts/load with a few devices, zero drift and no unexpected error.

scripts/load starts its own PostgreSQL cluster, the demo under gunicorn and locust (benchmarks/load/), all
on loopback; docs/benchmarks.md has the figures of the long runs. LOAD_USERS and LOAD_SECONDS change the
short run (default 10 devices for 20 seconds).
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.servers, pytest.mark.postgres]


def test_devices_under_load_end_with_exactly_the_servers_records(tmp_path):
    users, seconds = os.environ.get("LOAD_USERS", "10"), os.environ.get("LOAD_SECONDS", "20")
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    run = subprocess.run(
        [ROOT / "scripts/load", "--users", users, "--seconds", seconds, "--spawn-rate", users, "--out", tmp_path],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, f"scripts/load failed:\n{run.stdout[-5000:]}\n{run.stderr[-5000:]}"
    assert f"{users} devices," in run.stdout and "drifted devices: 0; unexpected errors: 0" in run.stdout, run.stdout
    assert (tmp_path / "stats_stats.csv").exists()
