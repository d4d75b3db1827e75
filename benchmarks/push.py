"""Push benchmark: what a sync push costs next to Django's bulk writes. Run it with ``scripts/bench``.

One run measures, on the database ``DATABASE_URL`` names (test project settings, a fresh database), with
10,000 records per figure:

1. baselines: Django's ``bulk_create`` of new Items; a raw ``cursor.executemany`` UPDATE of two columns; DRF's
   ``ModelSerializer(many=True).is_valid()`` (and, for reference, one serializer per record); Django's
   ``bulk_update`` (in batches of 500); the per-record loops of the seed apps (``Item.objects.create()`` per
   added record, ``get()`` + ``save()`` per modified record, in one transaction);
2. a push of 10,000 added records through the real view (``POST /sync/items-lww/?limit=1``, token auth,
   middleware, DRF, the push engine, the delta answer rendered), as rows/s and as ratios to ``bulk_create`` and
   to the per-record loop; then the same push answering a default-size page (no ``limit``);
3. the same for 10,000 modified records (partial: ``name`` and ``category``), with ratios to the raw
   ``executemany`` UPDATE and to the per-record loop.

Every time is the best of ``--repeat`` runs (default 3; time.perf_counter) after a warm-up, each run on rows of its own
(new rows are loaded with ``bulk_create`` before a modifying run, outside the timed part); every result is checked
outside the timed part (counts, versions, names, id_map). ``--profile`` adds a cProfile of one push of each kind.
"""

import cProfile
import gc
import io
import json
import os
import pstats
import re
import time
import uuid
from decimal import Decimal

from . import common
from .common import BenchmarkError, check, ms, rate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the repository, cut from paths
LIBRARY = os.path.join(ROOT, "offline_sync", "")
PUSH_URL = "/sync/items-lww/"
RECORDS = 10_000
CATEGORIES = ("tools", "food", "garden", "toys", "books")
UPDATE_SQL = "UPDATE testapp_item SET name=%s, category=%s WHERE id=%s"  # figure 1b, as the seeds would write it

# Without a batch size, PostgreSQL runs bulk_update as one UPDATE whose CASE has a WHEN per row, for every row:
# 167 s for 10,000 rows here. With 100-1,000 rows a batch it takes 3-4 s on either database.
BULK_UPDATE_BATCH = 500

TARGET_VS_BULK_CREATE = 0.8  # figure 2a: push rows/s >= 0.8 x bulk_create rows/s
TARGET_VS_UPDATE = 1.0  # figure 3a: push rows/s >= 1.0 x the raw executemany UPDATE's rows/s
TARGET_VS_LOOP = 8  # figures 2b, 3b: push rows/s >= 8 x the per-record loop's rows/s


def main(argv=None):
    common.main(Bench, __doc__, argv, repeat=3, profile_help="print a cProfile of one push of each kind")


class Bench(common.Bench):
    name = "benchmarks.push"
    username = "bench-push"
    permissions = ("add_item", "change_item", "view_item")

    def __init__(self, repeat, quick=False):
        super().__init__(repeat, quick)
        self.records = 2_000 if quick else RECORDS
        self.tag = 0  # each run's records carry a tag of their own in their names

    def next_tag(self):
        self.tag += 1
        return f"r{self.tag}"

    def new_values(self, tag):
        """The benchmark's added records as validated Python values (what bulk_create and create() get)."""
        return [
            {
                "name": f"Added {tag}-{i} " + "x" * (i % 20),
                "category": CATEGORIES[i % len(CATEGORIES)],
                "price": Decimal(i % 100_000 + 1) / 100,
            }
            for i in range(self.records)
        ]

    def load(self):
        """As many fresh items as a figure has records (bulk_create, outside any timing); their pks in order."""
        tag = self.next_tag()
        last = self.Item.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.Item.objects.bulk_create(self.Item(**values) for values in self.new_values(tag))
        pks = list(self.Item.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True))
        check(len(pks) == self.records, f"loaded {len(pks)} rows")
        self.analyze()
        return pks

    def analyze(self):
        if self.connection.vendor == "postgresql":
            with self.connection.cursor() as cursor:
                cursor.execute("ANALYZE testapp_item")  # what autovacuum does after a bulk load, now rather than later

    @staticmethod
    def changes(pks, tag):
        """The partial modification of every pk: a new name and category, price left as it is."""
        return [(pk, f"Modified {tag}-{i}", CATEGORIES[(i + 1) % len(CATEGORIES)]) for i, pk in enumerate(pks, start=1)]

    def cursor_now(self):
        """The cursor a caught-up pull would answer now: every change committed so far is before it."""
        from offline_sync.cursors import Position
        from offline_sync.stamps import watermark

        return Position(watermark(self.connection)[0]).encode()

    # -- measuring ------------------------------------------------------------------------------------

    def best(self, prepare, fn):
        """Best time of ``repeat`` runs of ``fn(prepare())`` after one warm-up; and the last run's input and result.

        ``prepare`` (fresh rows, a request body) is not timed.
        """
        fn(prepare())
        times = []
        for _ in range(self.repeat):
            given = prepare()
            gc.collect()
            start = time.perf_counter()
            result = fn(given)
            times.append(time.perf_counter() - start)
        return min(times), given, result

    def add_rate(self, figure, seconds, base_rate=None, target=None):
        """A rows/s row, with its ratio to ``base_rate`` (itself when None) and a ``>= target`` check when given."""
        rows_per_second = self.records / seconds
        ratio = rows_per_second / (base_rate or rows_per_second)
        self.add_ratio(figure, f"{rate(rows_per_second)} ({ms(seconds)})", ratio, target)
        return rows_per_second

    def add_ratio(self, figure, value, ratio, target=None):
        ok = None if target is None else ratio >= target
        self.add(figure, value, f"{ratio:.2f}", "" if target is None else f">= {target}", ok)

    def post(self, body, limit):
        """One push through the whole stack; returns the response (content rendered)."""
        url = PUSH_URL if limit is None else f"{PUSH_URL}?limit={limit}"
        response = self.client.post(url, body, content_type="application/json")
        if response.status_code != 200:
            raise BenchmarkError(f"POST {url}: {response.status_code} {response.content[:500]!r}")
        return response

    def added_body(self):
        """(tag, JSON body) of a push of every added record from the current cursor, a fresh sync_id."""
        tag = self.next_tag()
        added = [
            {"local_id": f"a-{i}", **values, "price": str(values["price"])}
            for i, values in enumerate(self.new_values(tag))
        ]
        body = {"sync_id": str(uuid.uuid4()), "last_sync": self.cursor_now(), "changes": {"items": {"added": added}}}
        return tag, json.dumps(body)

    def modified_body(self):
        """(tag, pks, JSON body) of a push modifying fresh rows (name, category) from the current cursor."""
        pks = self.load()
        tag = self.next_tag()
        modified = [{"id": pk, "name": name, "category": category} for pk, name, category in self.changes(pks, tag)]
        body = {
            "sync_id": str(uuid.uuid4()),
            "last_sync": self.cursor_now(),
            "changes": {"items": {"modified": modified}},
        }
        return tag, pks, json.dumps(body)

    # -- verification ---------------------------------------------------------------------------------

    def check_added(self, tag, count_before, response, limit):
        body = json.loads(response.content)
        ids = body["id_map"]["items"]
        check(
            len(ids) == self.records and set(ids) == {f"a-{i}" for i in range(self.records)},
            "id_map has every local_id",
        )
        check(len(set(ids.values())) == self.records, "id_map ids are distinct")
        check(self.Item.objects.count() == count_before + self.records, "item count after the push")
        rows = self.Item.objects.filter(name__startswith=f"Added {tag}-")
        check(sorted(rows.values_list("pk", flat=True)) == sorted(ids.values()), "id_map names the new rows")
        check(not rows.exclude(version=1).exists(), "new rows have version 1")
        got = rows.get(pk=ids["a-7"])
        check(
            (got.name, got.category, got.price) == (f"Added {tag}-7 " + "x" * 7, CATEGORIES[7 % 5], Decimal("0.08")),
            "values",
        )
        self.check_page(body, limit, set(ids.values()), version=1)

    def check_modified(self, tag, pks, response, limit):
        body = json.loads(response.content)
        check(body["id_map"] == {"items": {}} and body["conflicts"] == [], "no id_map entries, no conflicts")
        rows = self.Item.objects.filter(pk__in=pks)
        check(rows.count() == self.records, "modified rows still there")
        check(
            rows.filter(version=2, name__startswith=f"Modified {tag}-").count() == self.records, "versions 2, new names"
        )
        got = rows.get(pk=pks[6])
        check(
            (got.name, got.category, got.price) == (f"Modified {tag}-7", CATEGORIES[8 % 5], Decimal("0.07")), "partial"
        )
        self.check_page(body, limit, set(pks), version=2)

    @staticmethod
    def check_page(body, limit, pushed, *, version):
        """The answer is the delta since last_sync: the push's own records, first page of them."""
        from offline_sync.conf import sync_settings

        size = sync_settings.PAGE_SIZE if limit is None else limit
        records = body["changes"]["items"]["records"]
        check(not body["full"] and body["has_more"], "a delta with more to come")
        check(len(records) == size, f"{len(records)} records in the answer, expected {size}")
        check({r["id"] for r in records} <= pushed and all(r["version"] == version for r in records), "own changes")

    # -- the figures ----------------------------------------------------------------------------------

    def run(self, profile=False):
        from django.db import transaction
        from rest_framework import serializers

        Item = self.Item
        print(self.header(), flush=True)

        # 1a. bulk_create.
        def bulk_create(values):
            with transaction.atomic():
                return Item.objects.bulk_create([Item(**v) for v in values])

        def fresh_values():
            self.analyze()
            return self.new_values(self.next_tag())

        seconds, values, created = self.best(fresh_values, bulk_create)
        check(len(created) == self.records and Item.objects.filter(name=values[-1]["name"]).count() == 1, "bulk_create")
        create_rate = self.add_rate(f"1a. bulk_create, {self.records:,} new rows", seconds)

        # 1b. Raw executemany UPDATE of two columns.
        def fresh_updates():
            pks = self.load()
            return pks, [(name, category, pk) for pk, name, category in self.changes(pks, self.next_tag())]

        def executemany(given):
            with transaction.atomic(), self.connection.cursor() as cursor:
                cursor.executemany(UPDATE_SQL, given[1])

        seconds, (pks, params), _ = self.best(fresh_updates, executemany)
        stored = {
            pk: (name, category)
            for pk, name, category in Item.objects.filter(pk__in=pks).values_list("pk", "name", "category")
        }
        check(stored == {pk: (name, category) for name, category, pk in params}, "executemany UPDATE")
        update_rate = self.add_rate(f"1b. executemany UPDATE (name, category), {self.records:,} rows", seconds)

        # 1c, 1d. DRF validation: one serializer for the list, then one per record (as parse_push does today).
        class ItemSerializer(serializers.ModelSerializer):
            class Meta:
                model = Item
                fields = ["name", "category", "price"]

        def wire_records():
            return [{**v, "price": str(v["price"])} for v in self.new_values(self.next_tag())]

        def drf_many(records):
            serializer = ItemSerializer(data=records, many=True)
            serializer.is_valid(raise_exception=True)
            return serializer.validated_data

        seconds, records, validated = self.best(wire_records, drf_many)
        check(len(validated) == self.records and validated[9]["price"] == Decimal(records[9]["price"]), "DRF many=True")
        self.add_rate(f"1c. DRF ModelSerializer(many=True).is_valid, {self.records:,}", seconds, create_rate)

        loop_add_rate = loop_modify_rate = None
        if not self.quick:  # the per-record figures take most of the run

            def drf_each(records):
                out = []
                for record in records:
                    serializer = ItemSerializer(data=record)
                    serializer.is_valid(raise_exception=True)
                    out.append(serializer.validated_data)
                return out

            seconds, records, validated = self.best(wire_records, drf_each)
            check(
                len(validated) == self.records and validated[9]["price"] == Decimal(records[9]["price"]),
                "DRF per record",
            )
            self.add_rate(
                f"1d. DRF ModelSerializer(data=record).is_valid, each of {self.records:,}", seconds, create_rate
            )

            # 1e. bulk_update.
            def fresh_objects():
                pks = self.load()
                objs = list(Item.objects.filter(pk__in=pks).order_by("pk"))
                for obj, (_, name, category) in zip(objs, self.changes(pks, self.next_tag())):
                    obj.name, obj.category = name, category
                return objs

            def bulk_update(objs):
                with transaction.atomic():
                    return Item.objects.bulk_update(objs, ["name", "category"], batch_size=BULK_UPDATE_BATCH)

            seconds, objs, updated = self.best(fresh_objects, bulk_update)
            check(updated == self.records, "bulk_update count")
            check(Item.objects.filter(pk__in=[o.pk for o in objs], version=2, name=objs[5].name).count() == 1, "1e")
            self.add_rate(f"1e. bulk_update (name, category), batches of {BULK_UPDATE_BATCH}", seconds, update_rate)

            # 1f, 1g. The seeds' per-record loops.
            def create_each(values):
                with transaction.atomic():
                    return [Item.objects.create(**v) for v in values]

            seconds, values, created = self.best(fresh_values, create_each)
            check(
                len({o.pk for o in created}) == self.records and Item.objects.filter(name=values[0]["name"]).exists(),
                "1f",
            )
            loop_add_rate = self.add_rate(f"1f. per-record create(), {self.records:,} added", seconds, create_rate)

            def fresh_changes():
                pks = self.load()
                return pks, self.changes(pks, self.next_tag())

            def save_each(given):
                with transaction.atomic():
                    for pk, name, category in given[1]:
                        obj = Item.objects.get(pk=pk)
                        obj.name, obj.category = name, category
                        obj.save()

            seconds, (pks, changes), _ = self.best(fresh_changes, save_each)
            check(Item.objects.filter(pk__in=pks, version=2).count() == self.records, "1g versions")
            check(Item.objects.get(pk=changes[3][0]).name == changes[3][1], "1g names")
            loop_modify_rate = self.add_rate(
                f"1g. per-record get()+save(), {self.records:,} modified", seconds, update_rate
            )

        # 2. Push of added records through the view.
        def prepare_added():
            self.analyze()
            return (*self.added_body(), Item.objects.count())

        for limit in (1, None):
            seconds, (tag, _, count_before), response = self.best(
                prepare_added, lambda given, limit=limit: self.post(given[1], limit)
            )
            self.check_added(tag, count_before, response, limit)
            if limit is not None:
                figure = f"2a. push {self.records:,} added, HTTP, ?limit={limit}"
                push_rate = self.add_rate(figure, seconds, create_rate, TARGET_VS_BULK_CREATE)
                if loop_add_rate:
                    self.add_ratio(
                        "2b.   the same, over the per-record loop 1f", "", push_rate / loop_add_rate, TARGET_VS_LOOP
                    )
            else:
                self.add_rate(f"2c. push {self.records:,} added, HTTP, default limit", seconds, create_rate)

        # 3. Push of modified records (name, category) through the view.
        for limit in (1, None):
            seconds, (tag, pks, _), response = self.best(
                self.modified_body, lambda given, limit=limit: self.post(given[2], limit)
            )
            self.check_modified(tag, pks, response, limit)
            if limit is not None:
                figure = f"3a. push {self.records:,} modified, HTTP, ?limit={limit}"
                push_rate = self.add_rate(figure, seconds, update_rate, TARGET_VS_UPDATE)
                if loop_modify_rate:
                    self.add_ratio(
                        "3b.   the same, over the per-record loop 1g", "", push_rate / loop_modify_rate, TARGET_VS_LOOP
                    )
            else:
                self.add_rate(f"3c. push {self.records:,} modified, HTTP, default limit", seconds, update_rate)

        self.print_table()
        if profile:
            print(self.profile_pushes(), end="", flush=True)

    def profile_pushes(self):
        """cProfile of one push of each kind (?limit=1), top entries by own and by cumulative time."""
        text = ""
        for kind in ("added", "modified"):
            given = self.added_body() if kind == "added" else self.modified_body()
            gc.collect()
            profiler = cProfile.Profile()
            profiler.enable()
            self.post(given[-1], 1)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(25)
            text += self.profile_text(f"one push of {self.records:,} {kind} records, by own time", out)
            # By cumulative time, the library's own functions only: where the push's time goes, step by step.
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(re.escape(LIBRARY), 30)
            text += self.profile_text("the same push, offline_sync/ functions by cumulative time", out)
        return text

    @staticmethod
    def profile_text(title, out):
        lines = [line.replace(ROOT, "") for line in out.getvalue().splitlines() if line.strip()]
        return f"\ncProfile of {title}:\n" + "\n".join(lines) + "\n"

    # -- output ---------------------------------------------------------------------------------------

    def header(self):
        return super().header(f", {self.records:,} records each")

    def print_table(self):
        super().print_table(
            "ratio: 1c, 1d, 1f, 2a, 2c rows/s over 1a's; 1e, 1g, 3a, 3c over 1b's; 2b over 1f's; 3b over 1g's. "
            "Checked outside the timed part: row counts, names, versions (1 added, 2 modified), "
            f"id_map ({self.records:,} local_ids to distinct new ids), the answer's first page of own changes",
        )


if __name__ == "__main__":
    main()
