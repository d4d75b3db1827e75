"""The README's two-device demo (examples/two_devices.py), run as a user would, with staff in the admin."""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "two_devices.py"


def test_two_devices_conflict_waits_in_the_admin_until_staff_resolve_it(server, tmp_path):
    script = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--url", server.base_url, "--data-dir", str(tmp_path), "--wait", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        before = []
        for line in script.stdout:
            before.append(line)
            if line.startswith("Waiting for staff"):
                break
        text = "".join(before)
        assert "Waiting for staff" in text, text
        conflict_id = int(re.search(r"resolve conflict (\d+)", text).group(1))
        assert f"/admin/offline_sync/conflict/{conflict_id}/change/" in text
        assert "sync failed: unresolved_conflicts (no retry)" in text  # the tablet's second try is refused
        linked = re.search(r"the company got id (\d+); its contacts point at \[(\d+), (\d+)\]", text)
        if "has no /api/sync/company-contacts/ yet" not in text:  # the server has one-to-many (issue 10)
            assert linked, text
            assert linked.group(1) == linked.group(2) == linked.group(3)

        page = server.staff_resolve(conflict_id, "client")  # staff apply the tablet's version
        assert "tablet (two_devices.py)" in page
        after, _ = script.communicate(timeout=60)
    finally:
        script.kill()
        script.wait()
    assert script.returncode == 0, text + after
    tablet, phone = [line for line in after.splitlines() if "Harbour Supplies" in line][-2:]
    for shown in (tablet, phone):
        assert "phone '555-0222', address '2 Harbour Rd' (version 3)" in shown, after
