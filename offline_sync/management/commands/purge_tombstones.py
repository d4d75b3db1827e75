from django.core.management.base import BaseCommand

from offline_sync.conf import sync_settings
from offline_sync.tombstones import purge


class Command(BaseCommand):
    help = (
        "Delete deletion tombstones and stored push answers older than OFFLINE_SYNC['TOMBSTONE_RETENTION']. "
        "Clients whose cursor predates a purged tombstone get 410 cursor_expired and pull in full. Run it daily (cron)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be purged; delete nothing.")
        parser.add_argument("--database", default="default", help="Database alias (default: %(default)s).")

    def handle(self, *args, dry_run, database, **options):
        purged = purge(dry_run=dry_run, using=database)
        verb = "Would purge" if dry_run else "Purged"
        self.stdout.write(
            f"{verb} {purged.tombstones} tombstone(s) and {purged.answers} stored push answer(s) "
            f"older than {sync_settings.TOMBSTONE_RETENTION}."
        )
