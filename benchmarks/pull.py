"""Pull benchmark: what a sync pull costs next to a bare ``values()`` dump. Run it with ``scripts/bench``.

One run measures, on the database ``DATABASE_URL`` names (test project settings, a fresh database):

1. baseline: ``Item.objects.values(<wire fields>)`` of 60,000 rows + ``json.dumps(default=str)``;
2. DRF reference: ``ModelSerializer(many=True).data`` of the same rows, rendered by DRF's ``JSONRenderer``;
3. a full pull of the 60,000 rows through the real HTTP stack (``/sync/items/``, token auth, middleware, DRF,
   rendered JSON), following ``cursor`` until ``has_more`` is false, (a) at the default page size (1,000) and
   (b) in pages of 10,000, as rows/s and as a ratio to 1;
4. with 100,000 rows: a full pull of all of them in pages of 10,000, then a delta pull of 1% changed rows
   from the full pull's cursor, and the ratio of the two times;
5. peak Python memory (tracemalloc) of a 1,000-row and a 10,000-row page, and of a 10,000-row page
   with 10,000 and with 100,000 rows in the table.

``--quick``: 10,000 and 30,000 rows. Every time is the best of ``--repeat`` runs (time.perf_counter) after a
warm-up; every result is checked (row counts, ids) outside the timed part. ``--profile`` adds a cProfile of a
full pull at the default page size.
"""

import cProfile
import gc
import io
import json
import pstats
import random
import time
import tracemalloc
from decimal import Decimal

from . import common
from .common import BenchmarkError, check, mib, ms, rate

ITEMS_URL = "/sync/items/"
PAGE = 10_000  # the library's MAX_PAGE_SIZE
SMALL_PAGE = 1_000  # the library's default PAGE_SIZE
MEMORY_TABLE = 10_000  # figure 5a's table
LOAD_CHUNK = 5_000  # rows per bulk_create call: each call is one write, so one stamp
CATEGORIES = ("tools", "food", "garden", "toys", "books")

TARGET_PULL_VS_VALUES = {SMALL_PAGE: 0.7, PAGE: 1.0}  # figure 3: pull rows/s >= target x baseline rows/s
TARGET_DELTA_VS_FULL = 0.02  # figure 4: delta time <= 0.02 x full time
TARGET_MEMORY_TABLE = 1.10  # figure 5: a page's memory does not grow with the table


def main(argv=None):
    common.main(Bench, __doc__, argv, repeat=5, profile_help="print a cProfile of the one-page full pull")


class Bench(common.Bench):
    name = "benchmarks.pull"

    def __init__(self, repeat, quick=False):
        from offline_sync.records import default_fields

        super().__init__(repeat, quick)
        self.fields = default_fields(self.Item)
        self.small = 10_000 if quick else 60_000  # rows of figures 1-3
        self.large = 30_000 if quick else 100_000  # rows of figure 4
        self.changed = self.large // 100

    # -- setup ----------------------------------------------------------------------------------------

    def load(self, count):
        """Add ``count`` items with bulk_create, in chunks of LOAD_CHUNK rows (a stamp each)."""
        start = self.Item.objects.count()
        rng = random.Random(start)
        for offset in range(start, start + count, LOAD_CHUNK):
            self.Item.objects.bulk_create(
                (
                    self.Item(
                        name=f"Item {i} " + "x" * rng.randrange(20),
                        category=CATEGORIES[i % len(CATEGORIES)],
                        price=Decimal(rng.randrange(1, 100_000)) / 100,
                    )
                    for i in range(offset, min(offset + LOAD_CHUNK, start + count))
                ),
                batch_size=1_000,
            )
        if self.connection.vendor == "postgresql":
            with self.connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # what autovacuum does after a bulk load, now rather than later
        check(self.Item.objects.count() == start + count, f"expected {start + count} items")

    # -- measuring ------------------------------------------------------------------------------------

    def best(self, fn):
        """Best time of ``repeat`` runs of ``fn`` after one warm-up; and the last run's result."""
        fn()
        times = []
        for _ in range(self.repeat):
            gc.collect()
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return min(times), result

    @staticmethod
    def peak_memory(fn):
        """Peak bytes Python allocates during ``fn()`` (tracemalloc: not libpq's or SQLite's C buffers)."""
        gc.collect()
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def get(self, **params):
        """One pull request through the whole stack; returns the rendered body (bytes)."""
        response = self.client.get(ITEMS_URL, params)
        body = response.content
        if response.status_code != 200:
            raise BenchmarkError(f"GET {ITEMS_URL} {params}: {response.status_code} {body[:500]!r}")
        return body

    def pull_all(self, size=PAGE):
        """A full pull in pages of ``size`` rows until has_more is false: (pages, record ids, cursor)."""
        params, pages, ids = {"limit": size}, 0, []
        while True:
            page = json.loads(self.get(**params))
            pages += 1
            ids += [record["id"] for record in page["changes"]["items"]["records"]]
            if not page["has_more"]:
                return pages, ids, page["cursor"]
            params["since"] = page["cursor"]

    def pull_all_timed(self, size=PAGE):
        """Like pull_all, timing only the requests (not the parsing for the next cursor): (total, times, pages)."""
        gc.collect()
        params, pages, times = {"limit": size}, [], []
        while True:
            start = time.perf_counter()
            body = self.get(**params)
            times.append(time.perf_counter() - start)
            page = json.loads(body)
            pages.append(page)
            if not page["has_more"]:
                return sum(times), times, pages
            params["since"] = page["cursor"]

    # -- the figures ----------------------------------------------------------------------------------

    def run(self, profile=False):
        print(self.header(), flush=True)
        small = self.small
        self.load(MEMORY_TABLE)
        memory_small_table = self.peak_memory(lambda: self.get(limit=PAGE))
        self.load(small - MEMORY_TABLE)

        # 1. Baseline: values() + json.dumps.
        def baseline():
            return json.dumps(list(self.Item.objects.values(*self.fields)), default=str)

        seconds, dumped = self.best(baseline)
        check(len(json.loads(dumped)) == small, "baseline row count")
        baseline_rate = small / seconds
        self.add(f"1. values()+json.dumps, {small:,} rows", rate(baseline_rate), "1.00")

        # 2. DRF ModelSerializer, for reference.
        from rest_framework import serializers
        from rest_framework.renderers import JSONRenderer

        class ItemSerializer(serializers.ModelSerializer):
            class Meta:
                model = self.Item
                fields = self.fields

        def drf():
            return JSONRenderer().render(ItemSerializer(self.Item.objects.all(), many=True).data)

        seconds, rendered = self.best(drf)
        check(len(json.loads(rendered)) == small, "DRF row count")
        self.add(
            f"2. DRF ModelSerializer+render, {small:,} rows",
            rate(small / seconds),
            f"{small / seconds / baseline_rate:.2f}",
        )

        # 3. Full pull through HTTP, at the default page size and in pages of 10,000.
        for label, size in (("a", SMALL_PAGE), ("b", PAGE)):
            self.pull_all_timed(size)  # warm-up
            runs = [self.pull_all_timed(size) for _ in range(self.repeat)]
            seconds, _, pages = min(runs, key=lambda run: run[0])
            ids = [r["id"] for p in pages for r in p["changes"]["items"]["records"]]
            check(pages[0]["full"] and not pages[-1]["has_more"], "a full pull to its end")
            check(len(ids) == small and len(set(ids)) == small, f"full pull returned {len(ids)} rows")
            check(pages[0]["changes"]["items"]["records"][0].keys() == set(self.fields), "wire fields")
            pull_rate = small / seconds
            ratio = pull_rate / baseline_rate
            target = TARGET_PULL_VS_VALUES[size]
            self.add(
                f"3{label}. full pull {small:,} rows, {len(pages)} pages of {size:,}, HTTP",
                rate(pull_rate),
                f"{ratio:.2f}",
                f">= {target}",
                ratio >= target,
            )
        profile_text = self.profile_pull() if profile else ""

        # 4. 100,000 rows: full pull in pages, then a delta of 1%.
        large, changed_count = self.large, self.changed
        self.load(large - small)
        pages, ids, _ = self.pull_all()
        check(len(ids) == large and len(set(ids)) == large, f"full pull returned {len(ids)} rows")
        self.pull_all_timed()  # warm-up
        runs = [self.pull_all_timed() for _ in range(self.repeat)]
        full_seconds, page_times, full_pages = min(runs, key=lambda run: run[0])
        check(sum(len(p["changes"]["items"]["records"]) for p in full_pages) == large, "timed full pull rows")
        cursor = full_pages[-1]["cursor"]
        self.add(f"4a. full pull {large:,} rows, {pages} pages", f"{ms(full_seconds)} ({rate(large / full_seconds)})")
        later = sum(page_times[1:]) / (len(page_times) - 1)
        self.add(f"    page 1 (full) / pages 2-{pages} (since=) each", f"{ms(page_times[0])} / {ms(later)}")

        all_pks = list(self.Item.objects.values_list("pk", flat=True))
        changed = set(random.Random(1).sample(all_pks, changed_count))
        from django.db.models import F

        updated = self.Item.objects.filter(pk__in=changed).update(price=F("price") + 1)
        check(updated == changed_count, "update count")

        delta_seconds, body = self.best(lambda: self.get(limit=PAGE, since=cursor))
        page = json.loads(body)
        got = page["changes"]["items"]
        check(not page["full"] and not page["has_more"], "one delta page")
        check({r["id"] for r in got["records"]} == changed and len(got["records"]) == changed_count, "delta records")
        check(got["deleted"] == [], "delta deletions")
        check(all(r["version"] == 2 for r in got["records"]), "delta versions")
        ratio = delta_seconds / full_seconds
        self.add(
            f"4b. delta pull {changed_count:,} changed of {large:,}",
            ms(delta_seconds),
            f"{ratio:.4f}",
            f"<= {TARGET_DELTA_VS_FULL}",
            ratio <= TARGET_DELTA_VS_FULL,
        )

        # 5. Memory: bounded by the page, not the table.
        memory_page = self.peak_memory(lambda: self.get(limit=PAGE))
        memory_small_page = self.peak_memory(lambda: self.get(limit=SMALL_PAGE))
        self.add(f"5a. peak memory, {PAGE:,}-row page, {MEMORY_TABLE:,} table", mib(memory_small_table))
        ratio = memory_page / memory_small_table
        self.add(
            f"5b. peak memory, {PAGE:,}-row page, {large:,} table",
            mib(memory_page),
            f"{ratio:.2f}",
            f"<= {TARGET_MEMORY_TABLE}",
            ratio <= TARGET_MEMORY_TABLE,
        )
        self.add(
            f"5c. peak memory, {SMALL_PAGE:,}-row page, {large:,} table",
            mib(memory_small_page),
            f"{memory_small_page / memory_page:.2f}",
        )
        self.print_table()
        print(profile_text, end="", flush=True)

    def profile_pull(self):
        """cProfile of a full pull at the default page size, top entries by own and by cumulative time."""
        profiler = cProfile.Profile()
        profiler.enable()
        self.pull_all(SMALL_PAGE)
        profiler.disable()
        text = ""
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(30)
            lines = [line for line in out.getvalue().splitlines() if line.strip()]
            text += (
                f"\ncProfile of a full pull of {self.small:,} rows in pages of {SMALL_PAGE:,}, by {order}:\n"
                + "\n".join(lines)
                + "\n"
            )
        return text

    # -- output ---------------------------------------------------------------------------------------

    def print_table(self):
        super().print_table(
            "ratio: 2, 3a, 3b rows/s over 1's; 4b delta time over 4a's; "
            "5b memory over 5a's (same page, 10x the table); 5c over 5b's (a tenth of the page)",
        )


if __name__ == "__main__":
    main()
