"""A randomized concurrent history of sync clients, ORM writers and purges, and its checker.

The proof of PROTOCOL.md section 3, in the spirit of Jepsen and of Hypothesis' stateful
testing. Devices sync the way a client written from PROTOCOL.md alone would; writers change
the same tables through every ORM write path, in held-open transactions and in autocommit; a
purger expires tombstones. Every few seconds, and at the end, everything stops at a
checkpoint: held transactions end, every device retries its unacknowledged push and pulls to
quiescence, and the checker compares each replica with the database. (A change lost by a
cursor heals as soon as the record changes again, so checking only at the end would miss most.)

Every decision comes from a per-actor ``random.Random(f"{seed}:{actor}")``: a seed replays the
same decisions (not the same thread timing on PostgreSQL).
"""

import collections
import itertools
import random
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib.auth.models import Permission, User
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from offline_sync import tombstones
from offline_sync.conf import sync_settings
from offline_sync.cursors import Position
from offline_sync.exceptions import InvalidCursor
from offline_sync.models import Tombstone
from tests.testapp.models import Item, Note

USERS = ("alice", "bob", "carol", "staff")
CATEGORIES = ("a", "b", "c", "")
ENTITIES = {
    "/sync/items/": ("items",),
    "/sync/items-lww/": ("items",),
    "/sync/items-cd/": ("items",),
    "/sync/notes-lww/": ("notes",),
    "/sync/items-notes/": ("items", "notes"),
}
WRITABLE = {"/sync/items-lww/", "/sync/items-cd/", "/sync/notes-lww/"}
DEVICES = (  # (user, endpoint, filters)
    ("alice", "/sync/items-lww/", {}),
    ("bob", "/sync/items-lww/", {"category": "a"}),
    ("carol", "/sync/items-cd/", {}),
    ("bob", "/sync/items-cd/", {"category": "b"}),
    ("carol", "/sync/items/", {"category": "c"}),
    ("alice", "/sync/notes-lww/", {}),
    ("alice", "/sync/notes-lww/", {}),  # alice's second phone: one user's devices push at once
    ("bob", "/sync/notes-lww/", {}),
    ("carol", "/sync/notes-lww/", {}),
    ("staff", "/sync/items-notes/", {}),
    ("alice", "/sync/items-notes/", {"category": "b"}),
)
FIELDS = {"items": ("name", "category", "price"), "notes": ("owner", "item", "text")}  # compared with the database
MARKED = {"items": "name", "notes": "text"}  # the field whose marker prefix nothing changes
ENTITY = {Item: "items", Note: "notes"}
WRITERS = 4
ROUND = 3  # seconds between checkpoints
PURGE_AGE = 3  # seconds: purges take tombstones and stored push outcomes older than this
DROP_RATE = 0.15  # pushes whose answer the network loses
MAX_ROWS = 400  # items plus notes: above it writers delete more, so full pulls stay a few dozen pages


def marker(text):
    """The prefix of a name or text that nothing ever changes: one per created record (exactly-once accounting)."""
    return text.split("|", 1)[0]


def tags(entity, pks):
    return {f"{entity}:{pk}" for pk in pks}


def short(cursor):
    """A cursor's position, for the log only: clients treat it as opaque."""
    try:
        p = Position.decode(cursor)
    except InvalidCursor:
        return str(cursor)[:16]
    return str(p.stamp) if p.source < 0 else f"{p.stamp}/{p.source}/{p.key}"


def summarize(body):
    parts = [f"full={int(body['full'])} more={int(body['has_more'])} cur={short(body['cursor'])}"]
    for entity, change in body["changes"].items():
        if change["records"] or change["deleted"]:
            records = " ".join(f"{r['id']}v{r['version']}" for r in change["records"])
            parts.append(f"{entity}[+{records} -{' '.join(map(str, change['deleted']))}]")
    return " ".join(parts)


class History:
    """The shared bounded event log, the violations, and the ledger of pushed adds."""

    def __init__(self, seed, seconds):
        self.seed, self.seconds = seed, seconds
        self.start = time.monotonic()
        self.events = collections.deque(maxlen=50_000)  # (seq, t, actor, action, status, text, tags)
        self.seq = itertools.count()
        self.lock = threading.Lock()
        self.violations = []
        self.stats = collections.Counter()
        self.pushed = {}  # (entity, marker) -> (sync_id, local_id)
        self.outcomes = {}  # sync_id -> id_map once acknowledged, None once refused (nothing applied)

    def log(self, actor, action, status, text="", tags=()):
        with self.lock:
            seq = next(self.seq)
            self.events.append((seq, time.monotonic() - self.start, actor, action, status, text, set(tags)))
            self.stats[f"{action} {status}"] += 1
        return seq

    def count(self, what, n=1):
        with self.lock:
            self.stats[what] += n

    def violate(self, kind, actor, detail, tags=()):
        seq = self.log(actor, "VIOLATION", kind, detail, tags)
        with self.lock:
            self.violations.append((kind, actor, detail, set(tags), seq))

    def step(self, name, step):
        try:
            step()
        except Exception as exc:  # an engine exception that is not a database error, or a harness bug
            ours = [f"{f.name}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__) if f.filename == __file__]
            self.violate("exception", name, f"{type(exc).__name__}: {exc} (in {' < '.join(reversed(ours))})")

    @staticmethod
    def line(event):
        n, t, actor, action, status, text, _ = event
        return f"{n:6d} {t:7.3f}s {actor:<34} {action:<9} {status:<12} {text}"

    def dump(self, path):
        with open(path, "w") as out:
            out.writelines(self.line(e) + "\n" for e in self.events)

    def report(self):
        kinds = collections.Counter(violation[0] for violation in self.violations)
        lines = [
            f"HISTORY FAILED: seed={self.seed} seconds={self.seconds}: {len(self.violations)} violations "
            f"({', '.join(f'{k}: {n}' for k, n in kinds.most_common())})",
            f"reproduce: HISTORY_SEED={self.seed} HISTORY_SECONDS={self.seconds} pytest tests/test_history.py"
            f" (on {connection.vendor}; thread timing differs from run to run)",
        ]
        shown = collections.Counter()
        for kind, actor, detail, tags, seq in self.violations:
            shown[kind] += 1
            if shown[kind] > 3:  # a few of each kind, each with what led to it
                continue
            lines.append(f"\n* {kind} on {actor}: {detail}")
            # The events that touched its records (else its actor's last ones), and the actor's
            # own answers after the first and the last time another actor touched them.
            before = [e for e in self.events if e[0] < seq and e[3] != "VIOLATION"]
            related = [e for e in before if e[6] & tags][-30:] or [e for e in before if e[2] == actor][-30:]
            for since in (min, max):
                changed = since((e[0] for e in related if e[2] != actor), default=seq)
                related += [e for e in before if e[2] == actor and e[0] > changed][:8]
            lines += ["    " + self.line(e) for e in sorted({e[0]: e for e in related}.values())]
        lines.append("\nstats: " + ", ".join(f"{k}={v}" for k, v in sorted(self.stats.items())))
        return "\n".join(lines)


@dataclass
class Push:
    body: dict
    params: dict
    markers: dict  # (entity, local_id) -> marker
    tags: set
    first: tuple = None  # (id_map, conflicts) of an answer the network dropped: a retry must match it
    dropped_at: float = 0.0


class Device:
    """A mobile client: a replica per entity, a cursor, and at most one push waiting to be sent again."""

    def __init__(self, history, index, user, url, params, seed, user_pks):
        self.history, self.index, self.user, self.url, self.params = history, index, user, url, params
        self.user_pks = user_pks
        self.name = f"dev{index}:{user.username}{url}" + (f"?{urlencode(params)}" if params else "")
        self.entities = ENTITIES[url]
        self.rng = random.Random(f"{seed}:{self.name}")
        self.data = {entity: {} for entity in self.entities}
        self.cursor, self.has_more = None, False
        self.full_since, self.one_page = None, False  # when the paged full pull under way began
        self.seen = {}  # (entity, id) -> the highest version this device received
        self.pending = None  # a Push to send again with the same sync_id and body
        self.offline_until = 0.0
        self.counter = itertools.count()
        self.clients = threading.local()  # one test client per thread

    @property
    def client(self):
        if not hasattr(self.clients, "client"):
            self.clients.client = APIClient()
            self.clients.client.force_authenticate(self.user)
        return self.clients.client

    def log(self, action, status, text="", tags=()):
        self.history.log(self.name, action, status, text, tags)

    def violate(self, kind, detail, tags=()):
        self.history.violate(kind, self.name, detail, tags)

    def call(self, method, url, params, body=None):
        """One request. A database failure (a deadlock, say) is the protocol's 5xx: nothing applied."""
        url = f"{url}?{urlencode(params)}" if params else url
        try:
            response = self.client.get(url) if method == "get" else self.client.post(url, body, format="json")
        except DatabaseError as exc:
            return 500, {"error": "server_error", "detail": str(exc).splitlines()[0]}
        return response.status_code, response.json()

    def step(self):
        now = time.monotonic()
        if self.pending:  # the next turn after a lost answer: well within PURGE_AGE
            return self.send(self.pending)
        if now < self.offline_until:
            return None
        if self.cursor is None or self.has_more:
            return self.pull()
        roll = self.rng.random()
        if roll < 0.01:  # offline longer than the purge age: its cursor will expire
            self.offline_until = now + self.rng.uniform(PURGE_AGE + 1, PURGE_AGE + 3)
            return self.log("offline", "", f"for {self.offline_until - now:.1f}s")
        if self.url in WRITABLE and roll < 0.55:
            return self.push()
        return self.pull()

    # Pulling and applying pages (protocol section 3)

    def pull(self):
        since, limit = self.cursor, self.rng.randint(1, 50)
        if since is None and self.one_page:
            limit, self.one_page = sync_settings.MAX_PAGE_SIZE, False
        params = {**self.params, "limit": limit, **({"since": since} if since else {})}
        status, body = self.call("get", self.url, params)
        if status == 200:
            if body["full"] != (since is None):
                self.violate("full flag", f"GET since={short(since)} answered full={body['full']}")
            self.inspect(body)
            self.apply(body, "pull", f"limit={limit} since={short(since)}")
        elif status == 410 and body["error"] == "cursor_expired":
            self.log("pull", "410", f"since={short(since)}: full pull next")
            # A full pull begun less than PURGE_AGE ago needs no purged tombstone: every tombstone
            # it needs was written after it began (1 s of margin for transactions still open then).
            if self.full_since is not None and time.monotonic() - self.full_since < PURGE_AGE - 1:
                elapsed = time.monotonic() - self.full_since
                self.violate("full pull cannot complete", f"410 on a page of a full pull begun {elapsed:.2f}s ago")
            # A full pull in one page cannot be cut short: the device stays live and the run goes on.
            self.one_page = self.full_since is not None
            self.cursor, self.has_more, self.full_since = None, False, None
        elif status >= 500:
            self.log("pull", str(status), body["detail"])
        else:
            self.violate(f"pull answered {status} {body.get('error')}", f"GET {params}: {body}")
        return body

    def inspect(self, body):
        """Invariants of every answer as it arrives, applied or dropped."""
        for entity, change in body["changes"].items():
            both = {record["id"] for record in change["records"]} & set(change["deleted"])
            if both:
                self.violate("id in records and deleted", f"{entity} {sorted(both)}", tags(entity, both))
            for record in change["records"]:
                key, tag = (entity, record["id"]), f"{entity}:{record['id']}"
                if entity == "notes" and record["owner"] != self.user.pk:
                    self.violate("another user's note", f"note {record['id']} of user {record['owner']}", {tag})
                if record["version"] < self.seen.get(key, 0):
                    self.violate("version went back", f"{tag} v{record['version']} after v{self.seen[key]}", {tag})
                self.seen[key] = max(record["version"], self.seen.get(key, 0))
        if body["has_more"]:
            self.history.count("pages with has_more")

    def apply(self, body, action, text, touched=()):
        if body["full"]:  # this page and the ones after it are the whole subset
            self.data = {entity: {} for entity in self.entities}
            self.full_since = time.monotonic()
        touched = set(touched)
        for entity, change in body["changes"].items():
            for record in change["records"]:
                self.data[entity][record["id"]] = record
            for pk in change["deleted"]:
                self.data[entity].pop(pk, None)
            touched |= tags(entity, [r["id"] for r in change["records"]]) | tags(entity, change["deleted"])
        self.cursor, self.has_more = body["cursor"], body["has_more"]
        if not self.has_more:
            self.full_since = None
        self.log(action, "200", f"{text} -> {summarize(body)}", touched)

    # Pushing (protocol sections 4 to 6)

    def fields(self, entity, mark, *, added):
        """Field values of an added record, or some fields of an edit; the marker prefix is kept."""
        word = f"{mark}|{self.rng.randint(0, 9999)}"
        if entity == "items":
            price = f"{self.rng.randint(0, 99999) / 100:.2f}"
            values = {"name": word, "category": self.rng.choice(CATEGORIES), "price": price}
        else:
            items = sorted({r["item"] for r in self.data["notes"].values() if r["item"]})
            values = {"text": word, "item": self.rng.choice([None, None, *items[-3:]])}  # the newest items
            if self.rng.random() < 0.1:  # the owner is the server's: sent, it must be ignored
                values["owner"] = self.rng.choice(self.user_pks)
        if added:
            return values
        return {key: values[key] for key in self.rng.sample(sorted(values), self.rng.randint(1, len(values)))}

    def push(self):
        entity = self.entities[0]  # the writable endpoints carry one entity
        table = self.data[entity]
        burst = self.rng.random() < 0.1  # many records at once, to overlap with other pushes
        added, modified, deleted, markers = [], [], [], {}
        for _ in range(self.rng.randint(10, 40) if burst else self.rng.choice((0, 0, 1, 1, 2, 3))):
            n = next(self.counter)
            markers[entity, f"l{n}"] = mark = f"d{self.index}.{n}"
            added.append({"local_id": f"l{n}", **self.fields(entity, mark, added=True)})
        for pk in self.rng.sample(sorted(table), min(len(table), self.rng.randint(0, 8 if burst else 3))):
            version = {"base_version": table[pk]["version"]}
            if self.rng.random() < 0.2:
                deleted.append({"id": pk, **(version if self.rng.random() < 0.5 else {})})
            else:  # without base_version the server compares with last_sync
                edit = self.fields(entity, marker(table[pk][MARKED[entity]]), added=False)
                modified.append({"id": pk, **(version if self.rng.random() < 0.8 else {}), **edit})
        body = {
            "sync_id": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "last_sync": self.cursor,
            "device_id": self.name,
            "changes": {entity: {"added": added, "modified": modified, "deleted": deleted}},
        }
        with self.history.lock:
            self.history.pushed.update({(e, mark): (body["sync_id"], local) for (e, local), mark in markers.items()})
        touched = tags(entity, [item["id"] for item in modified + deleted])
        self.send(Push(body, {**self.params, "limit": self.rng.randint(1, 50)}, markers, touched))

    def send(self, push, may_drop=True):
        status, answer = self.call("post", self.url, push.params, push.body)
        retry = push.first is not None
        changes = next(iter(push.body["changes"].values()))
        what = f"sync_id={push.body['sync_id'][:8]} last_sync={short(push.body['last_sync'])} " + " ".join(
            f"{k}={len(v)}" for k, v in changes.items()
        )
        if retry:
            what += f" retry after {time.monotonic() - push.dropped_at:.2f}s"
        if status == 200:
            got = (answer["id_map"], answer["conflicts"])
            touched = push.tags | {f"{e}:{pk}" for e, ids in answer["id_map"].items() for pk in ids.values()}
            if retry and got != push.first:
                self.violate("retry answered differently", f"{what}: first {push.first}, retry {got}", touched)
            if {(e, local) for e, ids in answer["id_map"].items() for local in ids} != set(push.markers):
                self.violate("id_map", f"{what}: id_map {answer['id_map']} for {sorted(push.markers)}", touched)
            if not retry and answer["full"] != (push.body["last_sync"] is None):
                self.violate("full flag", f"{what}: push answered full={answer['full']}", touched)
            self.inspect(answer)
            if not retry and may_drop and self.rng.random() < DROP_RATE:
                push.first, push.dropped_at, self.pending = got, time.monotonic(), push
                return self.log("push", "dropped", what, touched)
            self.pending = None
            with self.history.lock:
                self.history.outcomes[push.body["sync_id"]] = answer["id_map"]
            self.history.count("conflicts", len(answer["conflicts"]))
            return self.apply(answer, "push", f"{what} conflicts={len(answer['conflicts'])}", touched)
        if status >= 500:  # nothing applied: send the same push again
            self.pending = push
            return self.log("push", str(status), f"{what}: {answer['detail']}", push.tags)
        if retry:  # the first try was applied: protocol 6 answers a retry from its stored outcome
            self.violate("retry refused", f"{what}: {status} {answer}", push.tags)
        self.pending = None
        with self.history.lock:
            self.history.outcomes[push.body["sync_id"]] = None
        self.log("push", f"{status} {answer.get('error')}", what, push.tags)
        if status == 410:
            self.cursor, self.has_more, self.full_since = None, False, None
        elif status == 409 and answer["error"] == "unresolved_conflicts":
            self.resolve_conflicts()
        elif status != 404:  # 404: a record moved out of scope or was deleted meanwhile
            self.violate(f"push answered {status} {answer['error']}", f"{what}: {answer}", push.tags)
        return None

    def resolve_conflicts(self):
        status, body = self.call("get", "/sync/conflicts/", {})
        for conflict in body["conflicts"] if status == 200 else []:
            resolution = self.rng.choice(("server", "client", "merge"))
            request = {"resolution": resolution}
            if resolution == "merge":
                request["record"] = {"category": self.rng.choice(CATEGORIES)}
                if conflict["server"]:
                    request["record"]["name"] = f"{marker(conflict['server']['name'])}|merged"
            status, answer = self.call("post", f"/sync/conflicts/{conflict['conflict_id']}/resolve/", {}, request)
            tag = f"{conflict['entity']}:{conflict['id']}"
            self.log("resolve", str(status), f"{conflict['kind']} {tag} {resolution} {answer.get('error', '')}", {tag})

    # Checkpoints

    def drain(self):
        """Send the unacknowledged push until it is answered."""
        for _ in range(20):
            if self.pending is None:
                return
            self.send(self.pending, may_drop=False)
        self.violate("push never acknowledged", f"sync_id {self.pending.body['sync_id']}", self.pending.tags)

    def settle(self, full=False):
        """Pull until a delta says nothing is left (after a full pull in one page if ``full``)."""
        if full:
            self.cursor, self.has_more, self.one_page = None, False, True
        for _ in range(1000):
            delta = self.cursor is not None
            body = self.pull()
            empty = "changes" in body and not any(c["records"] or c["deleted"] for c in body["changes"].values())
            if delta and empty and not body["has_more"]:
                return
        self.violate("no quiescence", "pulls never reached an empty delta")

    def expected(self):
        """The server's records of this device's subset, as on the wire."""
        out = {}
        for entity in self.entities:  # the only filter is the items' category
            rows = Item.objects.filter(**self.params) if entity == "items" else Note.objects.filter(owner=self.user)
            names = ("version", *FIELDS[entity])
            out[entity] = {
                pk: {name: str(v) if isinstance(v, Decimal) else v for name, v in zip(names, values)}
                for pk, *values in rows.values_list("pk", *names)
            }
        return out


class Writer:
    """Changes rows through every ORM write path, as admin actions and scripts do."""

    def __init__(self, history, index, users, seed, hold):
        self.history, self.users, self.hold = history, users, hold
        self.name = f"writer{index}"
        self.rng = random.Random(f"{seed}:{self.name}")
        self.counter = itertools.count()

    def step(self):
        crowded = Item.objects.count() + Note.objects.count() > MAX_ROWS
        op = self.rng.choice(self.DELETES if crowded and self.rng.random() < 0.5 else self.OPS)
        atomic, hold = self.rng.random() < 0.5, self.rng.uniform(0, self.hold)
        mode, text = "atomic" if atomic else "autocommit", ""
        try:
            if atomic:
                with transaction.atomic():
                    touched = op(self)
                    time.sleep(hold)  # commit late, after transactions that began later
                text = f"held {hold * 1000:.0f}ms "
            else:  # no atomic block at all, as the admin and scripts write
                touched = op(self)
        except DatabaseError as exc:  # a deadlock, a row deleted meanwhile: the database refused it
            touched, mode, text = set(), f"{mode}-aborted", str(exc).splitlines()[0]
        self.history.log(self.name, op.__name__, mode, text + " ".join(sorted(touched)), touched)

    # Decisions come from the rng, never from the database's ordering.

    def model(self):
        return self.rng.choice((Item, Note))

    def pick(self, model, most):
        ids = sorted(model.objects.values_list("pk", flat=True))
        return self.rng.sample(ids, min(len(ids), self.rng.randint(1, most)))

    def some(self, model, most):
        """Up to ``most`` random rows, in pk order (so concurrent writers lock them in one order)."""
        return list(model.objects.filter(pk__in=self.pick(model, most)).order_by("pk"))

    def word(self, mark=None):
        return f"{mark or f'{self.name}.{next(self.counter)}'}|{self.rng.randint(0, 9999)}"

    def price(self):
        return Decimal(self.rng.randint(0, 99999)) / 100

    def item_id(self):
        return self.rng.choice([None, *self.pick(Item, 1)])

    def values(self, model):
        if model is Item:
            return {"name": self.word(), "category": self.rng.choice(CATEGORIES), "price": self.price()}
        return {"owner": self.rng.choice(self.users), "item_id": self.item_id(), "text": self.word()}

    def change(self, obj):
        """Change fields of ``obj`` (its marker kept); return the names of some of them."""
        if isinstance(obj, Item):
            obj.name, obj.category, obj.price = self.word(marker(obj.name)), self.rng.choice(CATEGORIES), self.price()
        else:
            obj.text, obj.owner, obj.item_id = self.word(marker(obj.text)), self.rng.choice(self.users), self.item_id()
        return self.rng.sample(FIELDS[ENTITY[type(obj)]], self.rng.randint(1, 3))

    @staticmethod
    def touched(objs):
        return {f"{ENTITY[type(obj)]}:{obj.pk}" for obj in objs}

    # The write paths; each returns the records it touched.

    def create(self):
        model = self.model()
        return self.touched([model.objects.create(**self.values(model))])

    def save(self):
        objs = self.some(self.model(), 1)
        for obj in objs:
            fields = self.change(obj)
            if self.rng.random() < 0.5:
                obj.save(update_fields=fields)
            else:
                obj.save()
        return self.touched(objs)

    def update(self):
        objs = self.some(self.model(), 10)
        if objs and isinstance(objs[0], Item):
            Item.objects.filter(pk__in=[o.pk for o in objs]).update(category=self.rng.choice(CATEGORIES))
        else:
            Note.objects.filter(pk__in=[o.pk for o in objs]).update(item=self.item_id())
        return self.touched(objs)

    def bulk_create(self):
        model = self.model()
        objs = [model(**self.values(model)) for _ in range(self.rng.randint(1, 15))]
        return self.touched(model.objects.bulk_create(objs))

    def bulk_update(self):
        objs = self.some(self.model(), 10)
        if objs:
            type(objs[0]).objects.bulk_update(objs, sorted({name for obj in objs for name in self.change(obj)}))
        return self.touched(objs)

    def delete(self):
        objs = self.some(self.model(), 1)
        touched = self.touched(objs)
        for obj in objs:
            obj.delete()
        return touched

    def queryset_delete(self):
        objs = self.some(self.model(), 30)
        touched = self.touched(objs)
        if objs:
            type(objs[0]).objects.filter(pk__in=[o.pk for o in objs]).delete()
        return touched

    def cascade(self):
        """Delete an item that has notes: their ``item`` becomes NULL (on_delete=SET_NULL)."""
        pks = sorted(set(Note.objects.filter(item__isnull=False).values_list("item", flat=True)))
        item = Item.objects.filter(pk__in=self.rng.sample(pks, min(1, len(pks)))).first()
        touched = self.touched([item, *Note.objects.filter(item=item)]) if item else set()
        if item:
            item.delete()
        return touched

    def move_by_update(self):
        notes = self.some(Note, 5)
        Note.objects.filter(pk__in=[n.pk for n in notes]).update(owner=self.rng.choice(self.users))
        self.history.count("owner moves", len(notes))
        return self.touched(notes)

    def move_by_save(self):
        notes = self.some(Note, 1)
        for note in notes:
            note.owner = self.rng.choice(self.users)
            note.save()
        self.history.count("owner moves", len(notes))
        return self.touched(notes)

    # update() and bulk_create() in autocommit most often: their stamp and their write are apart.
    OPS = (create, save, save, update, update, update, bulk_create, bulk_create, bulk_create, bulk_update,
           delete, queryset_delete, cascade, move_by_update, move_by_update, move_by_save)  # fmt: skip
    DELETES = (delete, queryset_delete, cascade)


class Purger:
    """Every 1-3 s, purges tombstones and stored push outcomes older than PURGE_AGE."""

    name = "purger"

    def __init__(self, history, seed):
        self.history = history
        self.rng = random.Random(f"{seed}:{self.name}")
        self.next_at = time.monotonic() + self.rng.uniform(1, 3)

    def step(self):
        if time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + self.rng.uniform(1, 3)
        now = timezone.now() + sync_settings.TOMBSTONE_RETENTION - timedelta(seconds=PURGE_AGE)
        purged = tombstones.purge(now=now)
        self.history.count("purged tombstones", purged.tombstones)
        self.history.log(self.name, "purge", str(purged.tombstones), f"horizon {tombstones.purge_horizon()}")


class Checker:
    """The database against the devices' replicas and the ledger of pushed adds."""

    def __init__(self, history):
        self.history = history
        self.reported = set()  # (entity, marker): each exactly-once violation once

    def replica_ok(self, device):
        owners = dict(Note.objects.values_list("pk", "owner"))
        ok = True
        for entity, expected in device.expected().items():
            held = {pk: {k: r[k] for k in ("version", *FIELDS[entity])} for pk, r in device.data[entity].items()}
            if entity == "notes":
                for pk in sorted(pk for pk in held if owners.get(pk, device.user.pk) != device.user.pk):
                    device.violate("holds another user's note", f"note {pk} of user {owners[pk]}", {f"notes:{pk}"})
            missing, extra = sorted(expected.keys() - held.keys()), sorted(held.keys() - expected.keys())
            stale = sorted(pk for pk in expected.keys() & held.keys() if expected[pk] != held[pk])
            for kind, pks in (("missing record", missing), ("extra record", extra), ("stale record", stale)):
                for pk in pks[:5]:
                    detail = f"{entity} {pk}: holds {held.get(pk)}, server {expected.get(pk)} ({len(pks)} such)"
                    device.violate(kind, detail, {f"{entity}:{pk}"})
                ok = ok and not pks
        return ok

    def check_exactly_once(self):
        """Each marker on one row at most, live or tombstoned; the row its push's id_map names; none if refused."""
        rows = collections.defaultdict(set)
        for model, entity in ENTITY.items():
            for pk, text in model.objects.values_list("pk", MARKED[entity]):
                rows[entity, marker(text)].add(pk)
        for model, pk, data in Tombstone.objects.exclude(data={}).values_list(
            "content_type__model", "object_pk", "data"
        ):
            entity = {"item": "items", "note": "notes"}[model]
            rows[entity, marker(data[MARKED[entity]])].add(int(pk))
        for (entity, mark), pks in rows.items():
            if len(pks) > 1:
                self.once("one record, two rows", (entity, mark), f"{entity} {mark} on {sorted(pks)}", pks)
        for (entity, mark), (sync_id, local_id) in list(self.history.pushed.items()):
            outcome, pks = self.history.outcomes.get(sync_id, "unknown"), rows.get((entity, mark), set())
            if outcome is None and pks:
                self.once("refused push applied", (entity, mark), f"{sync_id} {entity} {mark} on {sorted(pks)}", pks)
            elif isinstance(outcome, dict) and pks - {outcome[entity][local_id]}:
                detail = f"{sync_id} {entity} {local_id} mapped to {outcome[entity][local_id]}, on {sorted(pks)}"
                self.once("add on another row", (entity, mark), detail, pks)

    def once(self, kind, key, detail, pks):
        if key not in self.reported:
            self.reported.add(key)
            self.history.violate(kind, "checker", detail, tags(key[0], pks))


def make_world(seed):
    """Users with every model permission, and some items and notes to start from."""
    codenames = [f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in ("item", "note")]
    users = []
    for name in USERS:
        user = User.objects.create_user(name, is_staff=name == "staff")
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        users.append(user)
    rng = random.Random(f"{seed}:world")
    items = Item.objects.bulk_create(
        Item(name=f"s{n}|", category=rng.choice(CATEGORIES), price=Decimal(rng.randint(0, 9999)) / 100)
        for n in range(80)
    )
    Note.objects.bulk_create(
        Note(owner=rng.choice(users), item=rng.choice([None, *items]), text=f"n{n}|") for n in range(60)
    )
    return users


def run(seed, seconds, workers, exercise=()):
    """One history: rounds of actors, each ended by a checkpoint. Returns the History.

    A run that has not met each of ``exercise`` (names in ``History.stats``) by ``seconds`` goes
    on, round by round, up to three times as long: a slow or busy machine does fewer steps.
    """
    history = History(seed, seconds)
    users = make_world(seed)
    by_name, pks = {u.username: u for u in users}, [u.pk for u in users]
    devices = [Device(history, n, by_name[u], url, params, seed, pks) for n, (u, url, params) in enumerate(DEVICES)]
    postgres = connection.vendor == "postgresql"
    writers = [Writer(history, n, users, seed, hold=0.3 if postgres else 0) for n in range(WRITERS)]
    actors, checker = [*devices, *writers, Purger(history, seed)], Checker(history)
    schedule = random.Random(f"{seed}:schedule")
    start = time.monotonic()
    deadline, cap = start + seconds, start + 3 * seconds

    def missing():
        return [what for what in exercise if not history.stats[what]]

    while True:
        if time.monotonic() >= deadline and missing():
            deadline = min(cap, deadline + ROUND)
        round_end = min(deadline, time.monotonic() + ROUND)
        if postgres:
            run_threads(history, actors, workers, round_end, seed)
        else:  # SQLite locks whole tables: one thread, the actors' steps in a seeded random order
            while time.monotonic() < round_end:
                actor = schedule.choice(actors)
                history.step(actor.name, actor.step)
        final = time.monotonic() >= deadline and (not missing() or deadline >= cap)
        # Every held transaction has ended with its step; devices offline sit this checkpoint out.
        online = [d for d in devices if final or time.monotonic() >= d.offline_until]
        history.log("main", "checkpoint", "final" if final else "", f"{len(online)} devices")
        for device in online:
            history.step(device.name, device.drain)
        for device in online:
            history.step(device.name, device.settle)
        for device in online:
            if not checker.replica_ok(device) and not final:  # start clean: later checkpoints report new losses only
                history.step(device.name, lambda device=device: device.settle(full=True))
        checker.check_exactly_once()
        if final:
            return history


def run_threads(history, actors, workers, until, seed):
    """Worker threads, each with its own connection, take turns on free actors."""
    locks = {actor.name: threading.Lock() for actor in actors}

    def work(n):
        rng = random.Random(f"{seed}:worker{n}")
        try:
            while time.monotonic() < until:
                actor = rng.choice(actors)
                if locks[actor.name].acquire(blocking=False):
                    try:
                        history.step(actor.name, actor.step)
                    finally:
                        locks[actor.name].release()
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
