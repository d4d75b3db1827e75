"""Property: whatever writes happen between and during paged pulls, a replica converges."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TransactionTestCase
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.sync_client import Replica
from tests.testapp.models import Item

CATEGORIES = ["a", "b"]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(CATEGORIES)),
        st.tuples(st.just("recategorize"), st.integers(0, 20), st.sampled_from(CATEGORIES)),
        st.tuples(st.just("rename"), st.integers(0, 20)),
        st.tuples(st.just("delete"), st.integers(0, 20)),
        st.tuples(st.just("bulk_rename"), st.sampled_from(CATEGORIES)),
        st.tuples(st.just("pull_page"), st.integers(1, 4)),
    ),
    max_size=40,
)


def apply(op):
    kind, *args = op
    pks = list(Item.objects.order_by("pk").values_list("pk", flat=True))
    if kind == "create":
        Item.objects.create(name="new", category=args[0])
    elif kind == "bulk_rename":
        Item.objects.filter(category=args[0]).update(name="bulk")
    elif pks:
        item = Item.objects.get(pk=pks[args[0] % len(pks)])
        if kind == "recategorize":
            item.category = args[1]
            item.save()
        elif kind == "rename":
            item.name += "!"
            item.save(update_fields=["name"])
        else:
            item.delete()


class ReplicaConvergesTest(TransactionTestCase):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(initial=st.integers(0, 6), operations=ops, limit=st.integers(1, 5))
    def test_replica_matches_server_subset(self, initial, operations, limit):
        from django.contrib.auth.models import Permission, User

        user = User.objects.create_user("u")
        user.user_permissions.add(Permission.objects.get(codename="view_item"))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        Item.objects.bulk_create([Item(name=f"i{n}", category=CATEGORIES[n % 2]) for n in range(initial)])
        replica = Replica(client, "/sync/items/", category="a")
        replica.page(limit=limit)
        for op in operations:
            if op[0] == "pull_page":
                replica.page(limit=op[1])
            else:
                apply(op)
        replica.sync(limit=limit)
        expected = {
            pk: (name, version)
            for pk, name, version in Item.objects.filter(category="a").values_list("pk", "name", "version")
        }
        assert {pk: (r["name"], r["version"]) for pk, r in replica.data["items"].items()} == expected
