"""Create the load test's device users on the demo database and write their API tokens to a JSON file.

    DJANGO_SETTINGS_MODULE=demo_project.settings python benchmarks/load/make_devices.py --devices 50 --out tokens.json

One user per device, with the demo user ``mobile``'s permissions: each device's conflicts are its own
(a user's pending conflicts refuse every push of that user, whichever device sent it). Tokens, not
passwords: the demo throttles logins. Run by scripts/load before the measured part. Users of an
earlier run are reused.
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth.models import Permission, User
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    names = [f"load-device-{n}" for n in range(args.devices)]
    with transaction.atomic():
        existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        User.objects.bulk_create(User(username=name) for name in names if name not in existing)
        users = list(User.objects.filter(username__in=names))
        permissions = Permission.objects.filter(user__username="mobile")
        if not permissions.exists():
            sys.exit("The demo user 'mobile' has no permissions: run `manage.py load_demo_data` first.")
        User.user_permissions.through.objects.bulk_create(
            [User.user_permissions.through(user=user, permission=p) for user in users for p in permissions],
            ignore_conflicts=True,
        )
        tokens = {token.user_id: token.key for token in Token.objects.filter(user__in=users)}
        Token.objects.bulk_create(Token(user=user, key=Token.generate_key()) for user in users if user.pk not in tokens)
        tokens = dict(Token.objects.filter(user__in=users).values_list("user__username", "key"))
    Path(args.out).write_text(json.dumps([tokens[name] for name in names]))


if __name__ == "__main__":
    main()
