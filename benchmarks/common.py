"""What the benchmarks share: the command line, a fresh test database, an API client, the table."""

import argparse
import os
import platform
import sys


class BenchmarkError(Exception):
    pass


def check(condition, what):
    if not condition:
        raise BenchmarkError(f"verification failed: {what}")


def rate(rows_per_second):
    return f"{rows_per_second:,.0f} rows/s"


def ms(seconds):
    return f"{seconds * 1000:,.1f} ms"


def mib(size):
    return f"{size / 2**20:.1f} MiB"


def main(bench_class, doc, argv=None, *, repeat=5, profile_help="print a cProfile"):
    """Parse the command line, set Django up on ``DATABASE_URL`` (tests.settings), run ``bench_class``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=repeat, help=f"timed runs per figure, best kept (default {repeat})"
    )
    parser.add_argument("--profile", action="store_true", help=profile_help)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs: a quick look while working")
    args = parser.parse_args(argv)
    if "DATABASE_URL" not in os.environ:
        parser.error("set DATABASE_URL to a fresh database (scripts/bench does)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

    import django

    django.setup()
    bench_class(args.repeat, args.quick).run(profile=args.profile)


class Bench:
    """A benchmark run on a fresh database: ``rows`` of the table, ``client`` of a user with ``permissions``."""

    name = "benchmarks"
    username = "bench"
    permissions = ("view_item",)

    def __init__(self, repeat, quick=False):
        from django.core.management import call_command
        from django.db import connection
        from django.test.utils import setup_test_environment

        from tests.testapp.models import Item

        self.repeat = repeat
        self.quick = quick
        self.rows = []  # (figure, value, ratio, target, result)
        self.Item = Item
        self.connection = connection
        setup_test_environment()  # ALLOWED_HOSTS gets "testserver", as under the test runner
        call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
        if Item.objects.exists():
            sys.exit(f"{self.name}: the database already holds items; it needs a fresh database")
        self.client = self._client()

    def _client(self):
        from django.contrib.auth.models import Permission, User
        from rest_framework.authtoken.models import Token
        from rest_framework.test import APIClient

        user = User.objects.create_user(self.username, password="bench")
        user.user_permissions.set(Permission.objects.filter(codename__in=self.permissions, content_type__model="item"))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        return client

    def add(self, figure, value, ratio="", target="", ok=None):
        self.rows.append((figure, value, ratio, target, "" if ok is None else ("PASS" if ok else "MISS")))

    def header(self, extra=""):
        import django
        import rest_framework

        if self.connection.vendor == "postgresql":
            with self.connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                database = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        else:
            import sqlite3

            database = f"SQLite {sqlite3.sqlite_version} (file)"
        quick = "; --quick" if self.quick else ""
        return (
            f"{database}; Python {platform.python_version()}, Django {django.get_version()}, "
            f"DRF {rest_framework.VERSION}; {os.cpu_count()} CPUs; best of {self.repeat} after a warm-up{extra}{quick}"
        )

    def print_table(self, legend):
        head = ("figure", "value", "ratio", "target", "result")
        widths = [max(len(str(row[i])) for row in [head, *self.rows]) for i in range(len(head))]
        line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        print(line.format(*head))
        for row in self.rows:
            print(line.format(*row).rstrip())
        print(legend, flush=True)
