"""Read-only sync against the live demo: full pull, delta, filters, paging, an expired cursor."""

import uuid

import pytest
from conftest import AGE_AND_PURGE_TOMBSTONES, PRODUCTS, assert_in_step
from offline_sync_client import READ_ONLY, Endpoint, Entity, StoreError

EDIT_PRODUCTS = """
from demo_project.catalog.models import Product
p = Product.objects.get(pk=%d); p.price = "2.45"; p.save()
Product.objects.filter(pk=%d).delete()
Product.objects.create(name=%r, category="Drinks", price="3.30")
"""


def test_full_pull_then_delta_after_staff_edits(server, device):
    phone = device([PRODUCTS])
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    [result] = outcome.endpoints
    assert (result.full_pull, result.pages) == (True, 1)
    assert len(phone.store.records("products")) > 10
    assert_in_step(phone, PRODUCTS, server)
    cursor = phone.store.state("products").cursor

    changed, deleted = phone.store.records("products")[:2]
    added = f"Flat white {uuid.uuid4().hex[:6]}"
    server.shell(EDIT_PRODUCTS % (changed.id, deleted.id, added))
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    [result] = outcome.endpoints
    assert not result.full_pull
    assert result.pulled == 3  # one changed, one added, one deleted: nothing else is sent again
    assert phone.store.state("products").cursor != cursor
    assert phone.store.find("products", deleted.id) is None
    now = phone.store.find("products", changed.id)
    assert (now.data["price"], now.version, now.local_id) == ("2.45", changed.version + 1, changed.local_id)
    assert added in {r.data["name"] for r in phone.store.records("products")}
    assert_in_step(phone, PRODUCTS, server)


def test_paging_until_has_more_is_false(server, device):
    phone = device([PRODUCTS], page_size=3)
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    [result] = outcome.endpoints
    assert result.pages >= 4  # some 20 products, 3 a page
    assert_in_step(phone, PRODUCTS, server)


def test_a_filter_selects_the_subset_and_changing_it_replaces_it(server, device, tmp_path):
    drinks = Endpoint("products", "/api/sync/products/", READ_ONLY, [Entity("products")], params={"category": "Drinks"})
    phone = device([drinks])
    assert phone.sync().ok
    assert {r.data["category"] for r in phone.store.records("products")} == {"Drinks"}
    assert_in_step(phone, drinks, server)

    # The app switches the filter: the old subset's cursor does not apply, the next sync is a full pull.
    bakery = Endpoint("products", "/api/sync/products/", READ_ONLY, [Entity("products")], params={"category": "Bakery"})
    phone.endpoints = [bakery]
    phone.restart()
    outcome = phone.sync()
    assert outcome.endpoints[0].full_pull
    assert {r.data["category"] for r in phone.store.records("products")} == {"Bakery"}
    assert_in_step(phone, bakery, server)


def test_an_expired_cursor_falls_back_to_a_full_pull(server, device):
    phone = device([PRODUCTS], page_size=5)
    assert phone.sync().ok
    doomed = phone.store.records("products")[0]
    server.shell(f"from demo_project.catalog.models import Product; Product.objects.filter(pk={doomed.id}).delete()")
    assert int(server.shell(AGE_AND_PURGE_TOMBSTONES)) >= 1

    outcome = phone.sync()
    assert outcome.ok, outcome.error
    assert outcome.endpoints[0].full_pull
    assert ("GET", "/api/sync/products/", 410) in phone.transport.log
    assert phone.store.find("products", doomed.id) is None
    assert_in_step(phone, PRODUCTS, server)


def test_read_only_records_refuse_local_writes(server, device):
    phone = device([PRODUCTS])
    assert phone.sync().ok
    record = phone.store.records("products")[0]
    for action in (
        lambda: phone.store.create("products", {"name": "x"}),
        lambda: phone.store.update("products", record.local_id, {"price": "0.01"}),
        lambda: phone.store.delete("products", record.local_id),
    ):
        with pytest.raises(StoreError, match="read-only"):
            action()
