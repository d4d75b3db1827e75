"""Bytes per record of a pull page, with and without GZipMiddleware, for the demo's endpoints.

    .venv/bin/python benchmarks/gzip_bytes.py [--records N] [--page N]

Builds the demo project (demo_project.settings, production mode with ``DJANGO_GZIP`` on) on a
throwaway SQLite file, or on ``DATABASE_URL`` if set (a fresh database: it adds rows), adds N
products, companies and contacts shaped like the demo's, then pulls one full page of each
endpoint twice through the whole middleware stack: once as a client that accepts no encoding,
once with ``Accept-Encoding: gzip``. Prints a Markdown table (docs/deployment.md has one run).
Sizes are of the response body; HTTP headers add the same few hundred bytes to either.
"""

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = {  # path: the entities its page carries (company-contacts: a page twice as long, to hold both)
    "/api/sync/products/": ("products",),
    "/api/sync/companies-lww/": ("companies",),
    "/api/sync/company-contacts/": ("companies", "contacts"),
}
STREETS = ("Main St", "Elm Rd", "Harbour Rd", "Office Park", "Station Sq", "Mill Lane", "Market St")
FIRST = ("Ana", "Ben", "Chloe", "Dmitri", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kira", "Luis")
LAST = ("Silva", "Okafor", "Nguyen", "Muller", "Rossi", "Kowalski", "Tanaka", "Haddad", "Larsen", "Costa")
CATEGORIES = ("Drinks", "Bakery", "Deli", "Pantry")


def configure(database_url, static_root):
    os.environ.update(
        DJANGO_STATIC_ROOT=static_root,  # WhiteNoise wants the directory; nothing is served from it
        DJANGO_SETTINGS_MODULE="demo_project.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="gzip-benchmark-only-not-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_HTTPS="0",
        DJANGO_CACHE="locmem",
        DJANGO_GZIP="1",
        DATABASE_URL=database_url,
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def add_rows(count, seed=1):
    """Demo-shaped rows: a user with the demo's mobile permissions, products, companies, contacts."""
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    from demo_project.catalog.models import Product
    from demo_project.crm.models import Company, Contact

    rng = random.Random(seed)
    user = User.objects.create_user("gzip-bench")
    codenames = ["view_product"] + [
        f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in ("company", "contact")
    ]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    Product.objects.bulk_create(
        Product(
            name=f"{rng.choice(('Organic', 'Classic', 'Large', 'Mini', 'House'))} product {n}",
            category=rng.choice(CATEGORIES),
            price=f"{rng.uniform(0.5, 40):.2f}",
        )
        for n in range(count)
    )
    companies = Company.objects.bulk_create(
        Company(
            name=f"{rng.choice(LAST)} & {rng.choice(LAST)} {n}",
            address=f"{rng.randint(1, 300)} {rng.choice(STREETS)}",
            phone=f"555-{rng.randint(0, 9999):04d}",
        )
        for n in range(count)
    )
    Contact.objects.bulk_create(
        Contact(
            name=f"{first} {last}",
            email=f"{first.lower()}.{last.lower()}{n}@example.com",
            phone=f"555-{rng.randint(0, 9999):04d}",
            company=rng.choice(companies),
            owner=user,
        )
        for n in range(count)
        for first, last in [(rng.choice(FIRST), rng.choice(LAST))]
    )
    return Token.objects.create(user=user).key


def measure(token, page):
    """Rows of (endpoint, records, bytes plain, bytes gzip)."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    rows = []
    for path, entities in ENDPOINTS.items():
        limit = page * len(entities)
        plain = client.get(path, {"limit": limit})
        packed = client.get(path, {"limit": limit}, HTTP_ACCEPT_ENCODING="gzip")
        assert plain.status_code == packed.status_code == 200, plain.content[:300]
        assert "Content-Encoding" not in plain, "a client that accepts no encoding got one"
        assert packed["Content-Encoding"] == "gzip", "GZipMiddleware did not compress the page"
        records = sum(len(plain.json()["changes"][name]["records"]) for name in entities)
        rows.append((path, records, len(plain.content), len(packed.content)))
    return rows


def table(rows):
    lines = [
        "| endpoint | records in the page | bytes per record | with gzip | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for path, records, plain, packed in rows:
        lines.append(
            f"| `{path}` | {records} | {plain / records:.0f} | {packed / records:.1f} | {plain / packed:.1f}x |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="rows of each model (default 1000)")
    parser.add_argument("--page", type=int, default=1000, help="the pull's limit (default 1000, the default page)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        configure(os.environ.get("DATABASE_URL") or f"sqlite:///{scratch}/gzip.sqlite3", scratch)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        rows = measure(add_rows(args.records), args.page)
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
