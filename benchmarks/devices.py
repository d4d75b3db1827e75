"""A fleet of devices syncing against a running demo server; afterwards, how many drifted.

    python benchmarks/devices.py --url http://127.0.0.1:8000 --devices 50 --seconds 30

Each device (a thread, on its own HTTP connection) keeps a replica of one endpoint of the
demo (products with a category filter, companies by last write wins, companies with
conflict detection) and, for a bounded time, pulls pages of random size, pushes random
adds, edits and deletes, drops some push answers and retries them with the same sync_id,
resolves its conflicts when the server refuses a push for them, and does a full pull after
a 410. Then every device retries what is unacknowledged and pulls to quiescence, and each
replica is compared with a fresh full pull: a device drifted when its ids or versions
differ. Pushed names are unique, so a duplicate row shows up too. Exits 1 on any drift.
Talks only to the given URL (run it against a server on loopback).
"""

import argparse
import random
import sys
import threading
import time
import uuid

import httpx

ENDPOINTS = ["/api/sync/products/", "/api/sync/companies-lww/", "/api/sync/companies/"]
USERS = [("mobile", "mobile"), ("mobile2", "mobile2")]
CATEGORIES = [None, "Drinks", "Bakery"]


class Device:
    def __init__(self, number, url, token, seed):
        self.name = f"d{number}"
        self.rng = random.Random(f"{seed}-{number}")
        self.endpoint = ENDPOINTS[number % len(ENDPOINTS)]
        self.writable = self.endpoint != "/api/sync/products/"
        category = CATEGORIES[number % len(CATEGORIES)] if not self.writable else None
        self.params = {"category": category} if category else {}
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60)
        self.entity = "products" if not self.writable else "companies"
        self.records, self.cursor, self.unacked = {}, None, None
        self.pushes = 0

    def request(self, method, path, **kwargs):
        while True:
            response = self.http.request(method, path, **kwargs)
            if response.status_code != 429:
                return response
            time.sleep(float(response.headers.get("Retry-After", "1")))

    def apply(self, body):
        change = body["changes"][self.entity]
        if body["full"]:
            self.records = {}
        for record in change["records"]:
            self.records[record["id"]] = record
        for pk in change["deleted"]:
            self.records.pop(pk, None)
        self.cursor = body["cursor"]
        return body["has_more"]

    def pull(self, limit=None):
        params = {**self.params, "limit": limit or self.rng.randint(1, 50)}
        if self.cursor:
            params["since"] = self.cursor
        response = self.request("GET", self.endpoint, params=params)
        if response.status_code == 410:
            self.cursor = None
            return True
        response.raise_for_status()
        return self.apply(response.json())

    def new_push(self):
        changes, ids = {}, list(self.records)
        self.pushes += 1
        added = [
            {"local_id": f"l{n}", "name": f"{self.name}-{self.pushes}-{n}", "address": "", "phone": ""}
            for n in range(self.rng.randint(0, 3))
        ]
        if added:
            changes["added"] = added
        edited = self.rng.sample(ids, min(len(ids), self.rng.randint(0, 3)))
        if edited:
            changes["modified"] = [
                {"id": pk, "base_version": self.records[pk]["version"], "phone": str(self.rng.randint(0, 999))}
                for pk in edited
            ]
        doomed = [pk for pk in ids if pk not in edited and self.rng.random() < 0.02]
        if doomed:
            changes["deleted"] = [{"id": pk, "base_version": self.records[pk]["version"]} for pk in doomed]
        return {"sync_id": str(uuid.uuid4()), "last_sync": self.cursor, "changes": {"companies": changes}}

    def push(self, drop=False):
        body = self.unacked or self.new_push()
        response = self.request("POST", self.endpoint, json=body)
        if response.status_code == 409 and response.json()["error"] == "unresolved_conflicts":
            for conflict in response.json()["conflicts"]:
                resolution = self.rng.choice(["server", "client"])
                path = f"/api/sync/conflicts/{conflict['conflict_id']}/resolve/"
                answer = self.request("POST", path, json={"resolution": resolution})
                if answer.status_code != 409:  # already resolved by another device of the same user: fine
                    answer.raise_for_status()
            self.unacked = body if body is self.unacked else None
            return
        if response.status_code == 410:  # nothing applied: pull in full, then push anew
            self.unacked, self.cursor = None, None
            return
        response.raise_for_status()
        if drop:  # the answer is lost on the way: the device retries this very body later
            self.unacked = body
            return
        self.unacked = None
        while self.apply(response.json()):
            response = self.request("GET", self.endpoint, params={**self.params, "since": self.cursor})
            response.raise_for_status()

    def step(self):
        if self.writable and (self.unacked or self.rng.random() < 0.3):
            self.push(drop=self.rng.random() < 0.2)
        else:
            self.pull()

    def settle(self):
        while self.unacked:
            self.push()
        while self.pull(limit=1000):
            pass

    def truth(self):
        return server_records(self.http, self.endpoint, self.params)[self.entity]


def server_records(http, path, params=None):
    """``{entity: {id: record}}``: what a fresh full pull of ``path`` gives (``http``: an authenticated client)."""
    records, cursor = {}, None
    while True:
        query = {**(params or {}), "limit": 1000, **({"since": cursor} if cursor else {})}
        response = http.get(path, params=query)
        if response.status_code == 429:  # throttled: wait as told, then the same page again
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        response.raise_for_status()
        body = response.json()
        for entity, change in body["changes"].items():
            table = records.setdefault(entity, {})
            for record in change["records"]:
                table[record["id"]] = record
            for pk in change["deleted"]:
                table.pop(pk, None)
        cursor = body["cursor"]
        if not body["has_more"]:
            return records


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        sys.exit("Only a server on loopback, please.")

    tokens = [
        httpx.post(f"{args.url}/api/auth/token/", json={"username": u, "password": p}).json()["token"] for u, p in USERS
    ]
    devices = [Device(n, args.url, tokens[n % len(tokens)], args.seed) for n in range(args.devices)]
    stop_at, errors = time.monotonic() + args.seconds, []

    def run(device):
        try:
            while time.monotonic() < stop_at:
                device.step()
            device.settle()
        except Exception as exc:  # reported below; one device's failure must not hide the others'
            errors.append(f"{device.name}: {exc!r}")

    threads = [threading.Thread(target=run, args=(device,)) for device in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for device in devices:  # a final pass: changes of devices that settled later
        device.settle()

    drifted = 0
    for device in devices:
        truth = device.truth()
        mine = {pk: r["version"] for pk, r in device.records.items()}
        if mine != {pk: r["version"] for pk, r in truth.items()}:
            drifted += 1
            missing, extra = truth.keys() - mine.keys(), mine.keys() - truth.keys()
            print(f"{device.name} {device.endpoint} drifted: {len(missing)} missing, {len(extra)} extra")
    names = [r["name"] for r in devices[1].truth().values()]
    duplicates = len(names) - len(set(names))
    pushes = sum(device.pushes for device in devices)
    print(f"{len(devices)} devices, {pushes} pushes, {len(errors)} errors, {drifted} drifted, {duplicates} duplicates")
    for error in errors[:10]:
        print(error)
    sys.exit(1 if drifted or duplicates or errors else 0)


if __name__ == "__main__":
    main()
