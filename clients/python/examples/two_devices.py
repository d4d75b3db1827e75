"""Two devices against the running demo server: offline edits, one conflict, staff resolve it in the admin.

    scripts/demo                                         # in one terminal
    python clients/python/examples/two_devices.py        # in another (pip install ./clients/python first)

A phone and a tablet of the demo user ``mobile``, each with its own local
store, sync the conflict-detection endpoint ``/api/sync/companies/``. Both go
offline and edit the same company; the phone syncs first, so the tablet's
edit becomes a conflict, which waits in the admin. The script then waits for
staff to resolve it there and shows that the tablet's next sync brings the
resolved record. If the server offers ``/api/sync/company-contacts/``
(one-to-many), the phone also creates a company with two contacts offline
and syncs them: they arrive linked to the company's new server id.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from offline_sync_client import (
    CONFLICT_DETECTION,
    LAST_WRITE_WINS,
    Connection,
    Endpoint,
    Entity,
    LocalStore,
    SyncClient,
    SyncError,
)

COMPANIES = Endpoint("companies", "/api/sync/companies/", CONFLICT_DETECTION, [Entity("companies")])
COMPANY_CONTACTS = Endpoint(
    "company-contacts",
    "/api/sync/company-contacts/",
    LAST_WRITE_WINS,
    [Entity("companies"), Entity("contacts", foreign_keys={"company": "companies"})],
)


def say(who, text):
    print(f"{who:>7} | {text}", flush=True)


def device(name, endpoints, args, directory):
    store = LocalStore(Path(directory) / f"{name}.sqlite3", endpoints)
    client = SyncClient(store, Connection(args.url), device_id=f"{name} (two_devices.py)")
    client.login(args.user, args.password)
    return client


def sync(who, client):
    outcome = client.sync()
    if outcome.ok:
        pushed = sum(e.pushed for e in outcome.endpoints)
        pulled = sum(e.pulled for e in outcome.endpoints)
        say(
            who,
            f"synced: pushed {pushed}, received {pulled}"
            + (f", {len(outcome.conflicts)} conflict(s)" if outcome.conflicts else ""),
        )
    else:
        say(who, f"sync failed: {outcome.error.code} ({'will retry' if outcome.retryable else 'no retry'})")
    return outcome


def show(who, record):
    data = record.data
    say(who, f"  {data['name']}: phone {data['phone']!r}, address {data['address']!r} (version {record.version})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the demo server (default: %(default)s)")
    parser.add_argument("--user", default="mobile")
    parser.add_argument("--password", default="mobile")
    parser.add_argument("--data-dir", help="where the two local stores live (default: a new temporary folder)")
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for staff (default: %(default)s)")
    args = parser.parse_args(argv)
    directory = args.data_dir or tempfile.mkdtemp(prefix="two_devices_")
    admin = f"{args.url.rstrip('/')}/admin/offline_sync/conflict/"

    try:
        phone, tablet = device("phone", [COMPANIES], args, directory), device("tablet", [COMPANIES], args, directory)
    except SyncError as error:
        sys.exit(f"Cannot log in to {args.url} as {args.user}: {error}. Is the demo running (scripts/demo)?")
    print(f"Local stores in {directory}")

    # 1. Online: the phone creates a company, both devices sync it.
    stamp = time.strftime("%H:%M:%S")
    local_id = phone.store.create(
        "companies", {"name": f"Harbour Supplies {stamp}", "address": "1 Quay St", "phone": "555-0100"}
    )
    say("phone", "created a company offline")
    if not sync("phone", phone).ok:
        sys.exit(f"The user {args.user} has unresolved conflicts from earlier: resolve them at {admin} first.")
    server_id = phone.store.get("companies", local_id).id
    sync("tablet", tablet)
    on_tablet = tablet.store.find("companies", server_id)
    show("tablet", on_tablet)

    # 2. Both offline, both edit the same company.
    phone.store.update("companies", local_id, {"phone": "555-0111"})
    say("phone", "offline: phone number -> 555-0111")
    tablet.store.update("companies", on_tablet.local_id, {"phone": "555-0222", "address": "2 Harbour Rd"})
    say("tablet", "offline: phone number -> 555-0222, address -> 2 Harbour Rd")

    # 3. Back online: the phone syncs first; the tablet's edit was made on the old version: a conflict.
    sync("phone", phone)
    outcome = sync("tablet", tablet)
    [conflict] = outcome.conflicts
    say(
        "tablet",
        f"conflict {conflict.conflict_id}: the server has phone {conflict.server['phone']!r}, "
        f"this device changed it to {conflict.client['phone']!r}",
    )
    show("tablet", tablet.store.find("companies", server_id))
    sync("tablet", tablet)  # refused until the conflict is resolved (seed: the client aborts the sync)

    # 4. One-to-many, if the server has it: contacts created offline under a new company.
    contacts_demo(args, directory)

    # 5. Staff resolve it in the admin; the tablet's next sync shows the result.
    print(f"\nThe conflict waits in the admin: {admin}{conflict.conflict_id}/change/ (admin/admin).")
    print(f"Waiting for staff to resolve conflict {conflict.conflict_id} there (Ctrl-C to stop) ...", flush=True)
    deadline = time.monotonic() + args.wait
    while not tablet.sync().ok:  # each try asks the server whether the conflict is still pending
        if time.monotonic() > deadline:
            sys.exit("Not resolved in time; run the script again once it is.")
        time.sleep(2)
    say("tablet", "synced: the conflict was resolved on the server")
    show("tablet", tablet.store.find("companies", server_id))
    sync("phone", phone)
    show("phone", phone.store.get("companies", local_id))


def contacts_demo(args, directory):
    client = device("phone-crm", [COMPANY_CONTACTS], args, directory)
    company = client.store.create(
        "companies", {"name": f"Lighthouse Ltd {time.strftime('%H:%M:%S')}", "address": "", "phone": ""}
    )
    people = [
        client.store.create("contacts", {"name": name, "email": email, "phone": "", "company": {"local_id": company}})
        for name, email in (("Ada", "ada@example.com"), ("Grace", "grace@example.com"))
    ]
    say("phone", "offline: a new company with two contacts (one-to-many)")
    outcome = client.sync()
    if not outcome.ok and outcome.error.status == 404:
        say("phone", f"skipped: {args.url} has no {COMPANY_CONTACTS.path} yet")
        return
    if not outcome.ok:
        say("phone", f"sync failed: {outcome.error}")
        return
    company_id = client.store.get("companies", company).id
    linked = [client.store.get("contacts", p).data["company"] for p in people]
    say("phone", f"synced: the company got id {company_id}; its contacts point at {linked}")


if __name__ == "__main__":
    main()
