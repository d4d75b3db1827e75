import uuid
import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient
from tests.testapp.models import Item

def client():
    user = User.objects.create_user(f"u{uuid.uuid4().hex[:6]}")
    user.user_permissions.set(Permission.objects.filter(codename__endswith="_item"))
    c = APIClient(); c.force_authenticate(user); return c

def push(c, url, changes):
    return c.post(url, {"sync_id": str(uuid.uuid4()), "changes": changes}, format="json")

@pytest.mark.django_db(transaction=True)
def test_mixed_price():
    r = push(client(), "/sync/items-lww/", {"items": {"added": [{"local_id": "a", "name": "x", "price": "1.00"}, {"local_id": "b", "name": "y"}]}})
    print("mixed", r.status_code)

@pytest.mark.django_db(transaction=True)
def test_nul_local_id():
    r = push(client(), "/sync/items-lww/", {"items": {"added": [{"local_id": "a\u0000", "name": "x"}]}})
    print("nul local_id", r.status_code)

@pytest.mark.django_db(transaction=True)
def test_nul_in_ignored_field_of_conflict():
    item = Item.objects.create(name="s")
    r = push(client(), "/sync/items-cd/", {"items": {"modified": [{"id": item.pk, "name": "c", "version": "\u0000"}]}})
    print("nul ignored conflict", r.status_code)
