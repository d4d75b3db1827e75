"""``manage.py load_demo_data``: demo users, and on the first run the demo products; safe to run again."""

import os
import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from demo_project.catalog.models import Product
from demo_project.crm.models import Company
from offline_sync.endpoints import Endpoint, PushRequest
from offline_sync.entities import Entity
from offline_sync.models import Conflict
from offline_sync.push import Modified

PRODUCTS = {
    "Drinks": [
        ("Espresso", "2.20"),
        ("Cappuccino", "3.10"),
        ("Green tea", "2.50"),
        ("Orange juice", "3.40"),
        ("Sparkling water", "1.80"),
    ],
    "Bakery": [
        ("Croissant", "1.90"),
        ("Sourdough loaf", "4.80"),
        ("Cinnamon roll", "2.70"),
        ("Bagel", "1.60"),
        ("Blueberry muffin", "2.40"),
    ],
    "Deli": [
        ("Ham sandwich", "5.50"),
        ("Caprese salad", "6.90"),
        ("Hummus wrap", "5.20"),
        ("Chicken soup", "4.60"),
        ("Cheese platter", "9.80"),
    ],
    "Pantry": [
        ("Olive oil 500 ml", "7.90"),
        ("Arabica beans 1 kg", "18.50"),
        ("Wildflower honey", "6.30"),
        ("Dark chocolate bar", "2.90"),
        ("Granola 750 g", "5.70"),
    ],
}

COMPANIES = [
    ("Acme", "1 Main St", "555-0100"),
    ("Globex", "42 Elm Rd", "555-0142"),
    ("Initech", "9 Office Park", "555-0199"),
]

CRM_PERMISSIONS = [
    f"crm.{action}_{model}" for action in ("view", "add", "change", "delete") for model in ("company", "contact")
]

# (username, password, superuser?, permissions); two mobile users, to sync from two devices.
USERS = [
    ("admin", "admin", True, []),
    ("mobile", "mobile", False, ["catalog.view_product", *CRM_PERMISSIONS]),
    ("mobile2", "mobile2", False, ["catalog.view_product", *CRM_PERMISSIONS]),
]


class Command(BaseCommand):
    help = (
        "Create the demo users (admin/admin for the admin site, mobile/mobile for the sync API) and the "
        "demo products and companies on the first run. Running it again puts the users back and keeps the "
        "catalog as it is (deleted products stay deleted). Development only."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}",
            help="Server address used in the printed instructions (default: http://127.0.0.1:$PORT or :8000).",
        )

    def handle(self, *args, base_url, **options):
        if not getattr(settings, "DEMO_KNOWN_PASSWORD_USERS", settings.DEBUG):
            raise CommandError(
                "load_demo_data creates users with well-known passwords (admin/admin, mobile/mobile); "
                "it only runs with DJANGO_DEBUG=1 (development only), or with DEMO_KNOWN_PASSWORD_USERS=1 "
                "for a demo served on this machine only (scripts/serve)."
            )
        with transaction.atomic():
            # The demo's users are made on the first run: later runs (each `scripts/demo` start) put the users
            # back but never the products and companies, so what staff deleted or renamed stays so.
            first_run = not get_user_model().objects.filter(username="mobile").exists()
            for username, password, superuser, perms in USERS:
                self.ensure_user(username, password, superuser, perms)
            created = self.ensure_products() if first_run else 0
            if first_run:
                Company.objects.bulk_create(Company(name=n, address=a, phone=p) for n, a, p in COMPANIES)
            if self.ensure_sample_conflict():
                self.stdout.write("Sample conflict: created for mobile2 on /api/sync/companies/ (see the admin).")
        self.stdout.write(
            f"Products: {created} created, {Product.objects.count()} in the catalog."
            if first_run
            else f"Products: {Product.objects.count()} in the catalog, as you left them (loaded on the first run only)."
        )
        self.print_instructions(base_url.rstrip("/"))

    def ensure_user(self, username, password, superuser, perms):
        """Create the user, or put back its flags, password and permissions; save only what changed."""
        user, created = get_user_model().objects.get_or_create(username=username)
        changed = created
        for attr in ("is_staff", "is_superuser"):
            if getattr(user, attr) != superuser:
                setattr(user, attr, superuser)
                changed = True
        if not user.is_active:
            user.is_active = True
            changed = True
        if not user.check_password(password):
            user.set_password(password)
            changed = True
        if changed:
            user.save()
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )  # add() skips a permission the user already has
        self.stdout.write(f"User {username!r}: {'created' if created else 'updated' if changed else 'unchanged'}.")

    def ensure_sample_conflict(self):
        """Once: staff edit Acme's phone while mobile2, offline, edits the version it saw."""
        mobile2 = get_user_model().objects.get(username="mobile2")
        acme = Company.objects.filter(name="Acme").first()
        if acme is None or Conflict.objects.filter(user=mobile2).exists():
            return False
        seen = acme.version
        acme.phone = "555-0101"
        acme.save()
        # mobile2's push, through the engine as the conflict detection endpoint would take it.
        endpoint = Endpoint(
            [Entity("companies", Company.objects.all())], name="/api/sync/companies/", detect_conflicts=True
        )
        sent = {"id": acme.pk, "base_version": seen, "phone": "555-0999", "address": "2 Harbour Rd"}
        values = {"phone": sent["phone"], "address": sent["address"]}
        changes = {"companies": {"modified": [Modified(acme.pk, seen, values, sent)]}}
        endpoint.push(PushRequest(uuid.uuid4(), changes, device_id="demo-phone"), user=mobile2)
        return True

    def ensure_products(self):
        """Create the demo products whose name is not in the catalog (the first run only)."""
        existing = set(Product.objects.values_list("name", flat=True))
        missing = [
            Product(name=name, category=category, price=Decimal(price))
            for category, items in PRODUCTS.items()
            for name, price in items
            if name not in existing
        ]
        Product.objects.bulk_create(missing)
        return len(missing)

    def print_instructions(self, base_url):
        self.stdout.write(
            self.style.SUCCESS("\nDemo data ready.")
            + f"""

Admin (edit products; changes show up in the next delta pull):
  {base_url}/admin/   user: admin   password: admin

Sync API (user mobile/mobile may view products):
  TOKEN=$(curl -s -X POST {base_url}/api/auth/token/ \\
      -H 'Content-Type: application/json' -d '{{"username": "mobile", "password": "mobile"}}' \\
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  curl -s -H "Authorization: Token $TOKEN" {base_url}/api/sync/products/
  curl -s -H "Authorization: Token $TOKEN" "{base_url}/api/sync/products/?since=<cursor from the last pull>"

Push companies, last write wins (users mobile/mobile and mobile2/mobile2):
  curl -s -H "Authorization: Token $TOKEN" -H 'Content-Type: application/json' \\
      {base_url}/api/sync/companies-lww/ -d '{{"sync_id": "'$(python3 -c 'import uuid; print(uuid.uuid4())')'",
      "last_sync": null, "changes": {{"companies": {{"added": [{{"local_id": "c-1", "name": "New Co"}}]}}}}}}'

OpenAPI schema: {base_url}/api/schema/
"""
        )
