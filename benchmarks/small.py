"""Small requests: what a device's poll costs, next to the cheapest authenticated DRF request. ``scripts/bench``.

Devices poll: most requests are small deltas and small pushes, so the fixed cost of a request matters more
than its cost per row. One run measures, through the test project's own views in-process (``tests.settings``,
``tests/testapp/views.py``; ``rest_framework.test.APIClient``, token authentication, the middleware), on the
database ``DATABASE_URL`` names (a fresh one), with a table of 10,000 items:

0. the floor: ``GET /sync/conflicts/`` with no conflict, an authenticated DRF request running one small query;
1. a delta pull with nothing new (``GET /sync/items/?since=`` a caught-up cursor);
2. a delta pull of 10 changed records;
3. a push of 10 modified records, last write wins (``POST /sync/items-lww/``, a fresh ``sync_id`` each);
4. statements per request (``CaptureQueriesContext``) of each, and of a full pull's first page (1,000 rows);
5. how costs grow with the table, at 1,000,000 rows (``--quick``: 100,000): a 10-record delta there vs the
   same in the 10,000-row table, and a page at the end of a full pull vs its first page (default page size).

Each time is per request: the best of ``--repeat`` batches of requests, after a warm-up batch. The machine is
shared, so each request of figures 1-3 and 5a is timed in turns with a floor request, and 5b's last pages in
turns with first pages: both sides of a ratio see the same load. Ratios 1-3 are the floor's time over the
request's (higher is better, 1.0 is as cheap as the floor); 5a is the delta's cost in floors in the big table
over the same in the small one, 5b the last page's time over the first's (1.0: no growth). Every answer is
checked outside the timed part.
"""

import cProfile
import gc
import io
import json
import pstats
import time
import uuid
from decimal import Decimal

from . import common
from .common import BenchmarkError, check, ms

FLOOR_URL = "/sync/conflicts/"
PULL_URL = "/sync/items/"
PUSH_URL = "/sync/items-lww/"
TABLE = 10_000
CHANGED = 10
LOAD_CHUNK = 5_000
CATEGORIES = ("tools", "food", "garden", "toys", "books")

TARGET_EMPTY_DELTA = 0.8  # figure 1: floor time / request time
TARGET_SMALL_DELTA = 0.7  # figure 2
TARGET_SMALL_PUSH = 0.4  # figure 3
TARGET_GROWTH = 1.25  # figures 5: "near 1x"


def main(argv=None):
    common.main(Bench, __doc__, argv, repeat=5, profile_help="print a cProfile of each small request")


class Bench(common.Bench):
    name = "benchmarks.small"
    username = "bench-small"
    permissions = ("add_item", "change_item", "view_item")

    def __init__(self, repeat, quick=False):
        super().__init__(repeat, quick)
        self.batch = 50 if quick else 200  # requests per timed batch
        self.large = 100_000 if quick else 1_000_000
        self.round = 0

    # -- setup ----------------------------------------------------------------------------------------

    def load(self, count):
        start = self.Item.objects.count()
        for offset in range(start, start + count, LOAD_CHUNK):
            self.Item.objects.bulk_create(
                (
                    self.Item(name=f"Item {i}", category=CATEGORIES[i % 5], price=Decimal(i % 10_000) / 100)
                    for i in range(offset, min(offset + LOAD_CHUNK, start + count))
                ),
                batch_size=1_000,
            )
        if self.connection.vendor == "postgresql":
            with self.connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # what autovacuum does after a bulk load, now rather than later
        check(self.Item.objects.count() == start + count, f"expected {start + count} items")

    def cursor_now(self):
        """The cursor a caught-up pull answers now."""
        page = self.pull(since=self.caught_up())
        check(not page["has_more"], "caught up")
        return page["cursor"]

    def caught_up(self):
        from offline_sync.cursors import Position
        from offline_sync.stamps import watermark

        return Position(watermark(self.connection)[0]).encode()

    def change(self, pks):
        from django.db.models import F

        check(self.Item.objects.filter(pk__in=pks).update(price=F("price") + 1) == len(pks), "update count")

    # -- requests -------------------------------------------------------------------------------------

    def request(self, method, url, data=None, **params):
        if method == "get":
            response = self.client.get(url, params)
        else:
            response = self.client.post(url, data, content_type="application/json")
        body = response.content
        if response.status_code != 200:
            raise BenchmarkError(f"{method.upper()} {url} {params}: {response.status_code} {body[:500]!r}")
        return body

    def pull(self, **params):
        return json.loads(self.request("get", PULL_URL, **params))

    def per_request(self, make_calls, reference=None):
        """Best time per request of ``repeat`` batches (after a warm-up batch): ``(seconds, reference's, answer)``.

        ``make_calls()`` gives the batch's calls (prepared untimed: push bodies are built before the timer).
        With ``reference``, a call of it runs before each call, timed apart: both sides of a ratio then see the
        same load on a shared machine, request by request.
        """
        result = None
        times, reference_times = [], []
        for run in range(self.repeat + 1):
            calls = make_calls()
            gc.collect()
            spent = reference_spent = 0.0
            for call in calls:
                if reference is not None:
                    start = time.perf_counter()
                    reference()
                    reference_spent += time.perf_counter() - start
                start = time.perf_counter()
                result = call()
                spent += time.perf_counter() - start
            if run:
                times.append(spent / len(calls))
                reference_times.append(reference_spent / len(calls))
        return min(times), min(reference_times), result

    @staticmethod
    def statements(call):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            call()
        return len(captured.captured_queries)

    def push_bodies(self, pks, count):
        last_sync = self.cursor_now()
        bodies = []
        for _ in range(count):
            self.round += 1
            modified = [{"id": pk, "name": f"Pushed {self.round}-{i}", "category": "toys"} for i, pk in enumerate(pks)]
            body = {"sync_id": str(uuid.uuid4()), "last_sync": last_sync, "changes": {"items": {"modified": modified}}}
            bodies.append(json.dumps(body))
        return bodies

    # -- the figures ----------------------------------------------------------------------------------

    def run(self, profile=False):
        print(self.header(f", {self.batch} requests a batch"), flush=True)
        self.load(TABLE)
        pks = list(self.Item.objects.order_by("pk").values_list("pk", flat=True))

        # 0. The floor.
        def floor():
            return self.request("get", FLOOR_URL)

        floor_seconds, _, body = self.per_request(lambda: [floor] * self.batch)
        check(json.loads(body) == {"conflicts": []}, "an empty conflicts list")
        self.add("0. floor: GET /sync/conflicts/ (empty), authenticated", f"{ms(floor_seconds)}/request", "1.00")
        counts = [("0. floor", self.statements(floor))]

        # 1. A delta pull with nothing new.
        cursor = self.cursor_now()
        empty_seconds, floor_seconds, body = self.per_request(
            lambda: [lambda: self.request("get", PULL_URL, since=cursor)] * self.batch, floor
        )
        page = json.loads(body)
        check(page["changes"]["items"] == {"records": [], "deleted": []} and not page["has_more"], "nothing new")
        self.add_vs_floor("1. delta pull, nothing new", floor_seconds, empty_seconds, TARGET_EMPTY_DELTA)
        counts.append(("1. delta pull, nothing new", self.statements(lambda: self.pull(since=cursor))))

        # 2. A delta pull of 10 changed records.
        changed = set(pks[100 : 100 + CHANGED])
        cursor = self.cursor_now()
        self.change(changed)

        def small_delta():
            return self.request("get", PULL_URL, since=cursor)

        delta_seconds, delta_floor, body = self.per_request(lambda: [small_delta] * self.batch, floor)
        self.check_delta(json.loads(body), changed)
        self.add_vs_floor(f"2. delta pull, {CHANGED} changed", delta_floor, delta_seconds, TARGET_SMALL_DELTA)
        counts.append((f"2. delta pull, {CHANGED} changed", self.statements(small_delta)))

        # 3. A push of 10 modified records, last write wins.
        pushed = pks[200 : 200 + CHANGED]
        version = self.Item.objects.get(pk=pushed[0]).version
        sent = 0

        def pushes():
            nonlocal sent
            bodies = self.push_bodies(pushed, self.batch)
            sent += len(bodies)
            return [lambda body=body: self.request("post", PUSH_URL, body) for body in bodies]

        push_seconds, floor_seconds, body = self.per_request(pushes, floor)
        answer = json.loads(body)
        check({r["id"] for r in answer["changes"]["items"]["records"]} == set(pushed), "the push's own records")
        check(self.Item.objects.get(pk=pushed[0]).version == version + sent, "every push applied")
        check(self.Item.objects.filter(pk__in=pushed, name__startswith=f"Pushed {self.round}-").count() == CHANGED, "")
        self.add_vs_floor(
            f"3. push, {CHANGED} modified (last write wins)", floor_seconds, push_seconds, TARGET_SMALL_PUSH
        )
        (push_body,) = self.push_bodies(pushed, 1)
        counts.append(
            (f"3. push, {CHANGED} modified", self.statements(lambda: self.request("post", PUSH_URL, push_body)))
        )
        counts.append(("4. full pull, first page (1,000)", self.statements(lambda: self.pull())))

        profile_text = self.profile_requests(floor, cursor, pushed) if profile else ""

        # 5. Growth: the same 10-record delta, and a page at the end of a full pull, in a bigger table. The
        # deltas are measured next to the floor and compared as multiples of it (the load may change between).
        small_end, small_first = self.end_page_time()
        self.load(self.large - TABLE)
        changed = set(self.Item.objects.order_by("-pk").values_list("pk", flat=True)[500 : 500 + CHANGED])
        cursor = self.cursor_now()
        self.change(changed)
        large_delta, large_floor, body = self.per_request(
            lambda: [lambda: self.request("get", PULL_URL, since=cursor)] * self.batch, floor
        )
        self.check_delta(json.loads(body), changed)
        self.add_growth(
            f"5a. delta of {CHANGED}, {self.large:,} vs {TABLE:,} rows",
            f"{ms(large_delta)} / {ms(delta_seconds)}",
            (large_delta / large_floor) / (delta_seconds / delta_floor),
        )
        large_end, large_first = self.end_page_time()
        self.add_growth(
            f"5b. last page vs first, {self.large:,}-row full pull",
            f"{ms(large_end)} / {ms(large_first)}",
            large_end / large_first,
        )
        self.add(
            f"    (the same, {TABLE:,} rows)", f"{ms(small_end)} / {ms(small_first)}", f"{small_end / small_first:.2f}"
        )
        counts.append(("5. last page of a full pull", self.statements(lambda: self.pull(since=self.end_cursor()))))

        for what, count in counts:
            self.add(f"statements: {what}", f"{count}")
        self.print_table(
            "ratio: 1-3 the floor's time over the request's, each request timed in turns with a floor request "
            "(1.00: as cheap as the floor); 5a the delta's time as a multiple of the floor's in the "
            f"{self.large:,}-row table over the same in the {TABLE:,}-row table; 5b the last page's time over the "
            "first page's, timed in turns. Checked outside the timed part: the answers' records, the pushes' "
            "versions and names"
        )
        print(profile_text, end="", flush=True)

    def check_delta(self, page, changed):
        records = page["changes"]["items"]["records"]
        check(not page["has_more"] and page["changes"]["items"]["deleted"] == [], "one delta page, no deletion")
        check({r["id"] for r in records} == changed and len(records) == CHANGED, "the changed records")

    def end_cursor(self):
        """The cursor a full pull in pages of the default size holds before its last page."""
        from offline_sync.conf import sync_settings
        from offline_sync.cursors import Position
        from offline_sync.stamps import watermark

        size = sync_settings.PAGE_SIZE
        total = self.Item.objects.count()
        stamp, pk = self.Item.objects.order_by("sync_stamp", "pk").values_list("sync_stamp", "pk")[total - size - 1]
        return Position(stamp, 0, pk, floor=watermark(self.connection)[0]).encode()

    def end_page_time(self):
        """``(the last page's time, the first page's)``, measured in turns."""
        from offline_sync.conf import sync_settings

        cursor = self.end_cursor()
        seconds, first, body = self.per_request(
            lambda: [lambda: self.request("get", PULL_URL, since=cursor)] * 5, lambda: self.request("get", PULL_URL)
        )
        page = json.loads(body)
        records = page["changes"]["items"]["records"]
        check(len(records) == sync_settings.PAGE_SIZE and not page["has_more"], "the last page")
        return seconds, first

    def add_vs_floor(self, figure, floor_seconds, seconds, target):
        ratio = floor_seconds / seconds
        value = f"{ms(seconds)} (floor {ms(floor_seconds)})"
        self.add(figure, value, f"{ratio:.2f}", f">= {target}", ratio >= target)

    def add_growth(self, figure, value, ratio):
        self.add(figure, value, f"{ratio:.2f}", f"<= {TARGET_GROWTH}", ratio <= TARGET_GROWTH)

    def profile_requests(self, floor, cursor, pushed):
        """cProfile of 200 requests of each kind, top entries by own time."""
        text = ""
        bodies = self.push_bodies(pushed, 200)
        kinds = [
            ("the floor", lambda i: floor()),
            (f"a delta pull of {CHANGED}", lambda i: self.request("get", PULL_URL, since=cursor)),
            (f"a push of {CHANGED} modified", lambda i: self.request("post", PUSH_URL, bodies[i])),
        ]
        for what, call in kinds:
            profiler = cProfile.Profile()
            profiler.enable()
            for i in range(200):
                call(i)
            profiler.disable()
            for order in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(30)
                lines = [line for line in out.getvalue().splitlines() if line.strip()]
                text += f"\ncProfile of 200 requests, {what}, by {order}:\n" + "\n".join(lines) + "\n"
        return text


if __name__ == "__main__":
    main()
