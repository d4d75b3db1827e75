"""offline_sync.routers.PullsFromReplicas: what goes where (tests/test_replica.py runs it against real standbys)."""

from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from offline_sync.models import Conflict
from offline_sync.routers import PullsFromReplicas
from tests.testapp.models import Item


class TwoReplicas(PullsFromReplicas):
    replicas = ("replica1", "replica2")


def test_synced_rows_and_conflicts_are_read_from_the_replicas_and_written_on_the_primary():
    router = TwoReplicas()
    assert {router.db_for_read(Item) for _ in range(50)} == {"replica1", "replica2"}
    assert router.db_for_read(Conflict) in ("replica1", "replica2")
    assert router.db_for_write(Item) == router.db_for_write(Conflict) == "default"


def test_users_and_tokens_are_read_on_the_primary():
    router = TwoReplicas()
    assert router.db_for_read(User) == router.db_for_read(Token) == "default"


def test_only_the_primary_is_migrated():
    router = TwoReplicas()
    assert router.allow_migrate("default", "testapp")
    assert not router.allow_migrate("replica1", "testapp")
