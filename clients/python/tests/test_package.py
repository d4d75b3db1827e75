"""The package installs and imports without Django: httpx and the stdlib are all it needs."""

import importlib.metadata
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def test_the_only_runtime_dependency_is_httpx():
    requires = importlib.metadata.requires("offline-sync-client") or []
    runtime = [r for r in requires if "extra ==" not in r]
    assert [r.split(">")[0].split("<")[0].strip() for r in runtime] == ["httpx"]
    assert not any("django" in r.lower() for r in requires)


def test_importing_the_client_imports_no_django():
    code = (
        "import sys, offline_sync_client; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'rest_framework', 'django_filters', 'drf_spectacular')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pip_install_into_a_fresh_virtualenv_without_django(tmp_path):
    """What a user does: ``pip install ./clients/python`` into a new venv, then use it."""
    source = tmp_path / "src"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(source)],
        check=True,
        capture_output=True,
    )
    smoke = textwrap.dedent(
        """
        import importlib.util, sys
        assert importlib.util.find_spec("django") is None, "Django is installed in the fresh venv"
        from offline_sync_client import LAST_WRITE_WINS, Endpoint, LocalStore
        store = LocalStore(":memory:", [Endpoint("crm", "/api/sync/companies-lww/", LAST_WRITE_WINS, ["companies"])])
        local_id = store.create("companies", {"name": "Offline Co"})
        print(store.get("companies", local_id).data["name"])
        """
    )
    out = subprocess.run([str(python), "-c", smoke], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "Offline Co"
