"""The README's quickstart, run as a new user would: a fresh ``django-admin startproject``, then every snippet.

The snippets are read from README.md (its "Quickstart" section), so the README cannot drift from what works:
a ``python`` block whose first line is ``# path/to/file.py`` replaces that file, ``# path: add at the end``
appends to it; ``sh`` blocks run in order in one bash script (the install lines excepted: this test runs in
the installed environment), on a free port instead of 8000. The script's last command is the README's pull,
whose answer must hold the item its push added.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# It runs on SQLite files of its own, never the test database: the PostgreSQL passes leave it out.
pytestmark = pytest.mark.own_sqlite

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^( *)```(\w+)\n(.*?)^\1```$", re.DOTALL | re.MULTILINE)
FILE_COMMENT = re.compile(r"# (?P<path>[\w/]+\.py)(?P<append>: add at the end)?$")
NOT_RUN = ("python3 -m venv", "pip install")  # the test's own environment has the package installed


def quickstart_blocks():
    """(language, code) of each fenced block in the README's Quickstart section, dedented."""
    text = README.read_text()
    start = text.index("## Quickstart")
    section = text[start : text.index("\n## ", start + 1)]
    blocks = []
    for match in FENCE.finditer(section):
        indent, language, code = match.groups()
        lines = [line.removeprefix(indent) for line in code.splitlines()]
        blocks.append((language, "\n".join(lines) + "\n"))
    return blocks


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_script(blocks, port):
    """One bash script: files written by heredoc, commands as they are, the server awaited once started."""
    lines = ["set -euo pipefail"]
    files = 0
    for language, code in blocks:
        if language == "python":
            match = FILE_COMMENT.match(code.splitlines()[0])
            assert match, f"a quickstart python block must start with '# path/to/file.py': {code[:80]!r}"
            files += 1
            redirect = ">>" if match["append"] else ">"
            lines += [f"cat {redirect} {match['path']} <<'QUICKSTART_EOF'", code, "QUICKSTART_EOF"]
        elif language == "sh":
            for line in code.replace("8000", str(port)).splitlines():
                if line.startswith(NOT_RUN):
                    continue
                lines.append(line)
                if "manage.py runserver" in line:
                    url = f"http://127.0.0.1:{port}/"
                    lines.append(f"for _ in $(seq 300); do curl -s -o /dev/null {url} && break; sleep 0.2; done")
        else:
            raise AssertionError(f"unexpected {language!r} block in the quickstart")
    assert files >= 5, "the quickstart lost its settings, models, views, urls or admin snippet"
    return "\n".join(lines) + "\n"


def json_values(text):
    """The JSON documents in ``text`` (curl prints them without newlines between them)."""
    decoder, values, index = json.JSONDecoder(), [], 0
    while (index := text.find("{", index)) != -1:
        value, index = decoder.raw_decode(text, index)
        values.append(value)
    return values


def test_readme_quickstart_syncs_a_record_in_a_fresh_project(tmp_path):
    port = free_port()
    script = build_script(quickstart_blocks(), port)
    (tmp_path / "quickstart.sh").write_text(script)
    bin_dir = str(Path(sys.executable).parent)  # django-admin, python and python3 of this environment
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTHONPATH")}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    # Output to files, not pipes: the server the script leaves running keeps them open.
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        process = subprocess.Popen(
            ["bash", "quickstart.sh"],
            cwd=tmp_path,
            env=env,
            stdout=out_file,
            stderr=err_file,
            start_new_session=True,  # the server the script starts is in this process group, stopped below
        )
        try:
            process.wait(timeout=240)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)  # the runserver left in the background
            process.wait()
    out, err = out_path.read_text(), err_path.read_text()
    assert process.returncode == 0, f"the quickstart failed:\n{out}\n{err}"
    *_, push, pull = json_values(out)
    assert list(push["id_map"]) == ["items"], push
    assert list(push["id_map"]["items"]) == ["i-1"], push
    assert pull["full"] is True, pull
    [record] = pull["changes"]["items"]["records"]
    assert (record["id"], record["name"], record["quantity"], record["version"]) == (
        push["id_map"]["items"]["i-1"],
        "Hammer",
        3,
        1,
    )
