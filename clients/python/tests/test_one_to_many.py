"""One-to-many against the demo's ``/api/sync/company-contacts/`` (PROTOCOL.md sections 4.3 and 8).

The client side of local ids is also tested without a server in test_store.py.
"""

import uuid

from conftest import COMPANY_CONTACTS, assert_in_step, drop_response


def new_company_with_contacts(store, contacts=2):
    company = store.create("companies", {"name": f"Parent {uuid.uuid4().hex[:8]}", "address": "", "phone": ""})
    people = [
        store.create(
            "contacts",
            {"name": f"Person {i}", "email": f"p{i}@example.com", "phone": "", "company": {"local_id": company}},
        )
        for i in range(contacts)
    ]
    return company, people


def test_contacts_created_offline_under_a_new_company_arrive_linked(server, device):
    phone = device([COMPANY_CONTACTS])
    company, people = new_company_with_contacts(phone.store)
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    company_id = phone.store.get("companies", company).id
    assert company_id is not None
    for person in people:
        assert phone.store.get("contacts", person).data["company"] == company_id
    state = server.state(phone.token, COMPANY_CONTACTS)
    assert sorted(c["company"] for c in state["contacts"].values() if c["name"].startswith("Person")) == [
        company_id,
        company_id,
    ]
    assert_in_step(phone, COMPANY_CONTACTS, server)


def test_contacts_stay_private_and_follow_their_company(server, device):
    phone, other = device([COMPANY_CONTACTS], name="phone"), device([COMPANY_CONTACTS], name="other")
    company, people = new_company_with_contacts(phone.store)
    assert phone.sync().ok
    assert other.sync().ok
    company_id = phone.store.get("companies", company).id
    assert other.store.find("companies", company_id) is not None  # companies are shared
    assert {p.id for p in other.store.records("contacts")}.isdisjoint(
        phone.store.get("contacts", p).id for p in people
    )  # contacts are not

    phone.store.delete("companies", company)  # the cascade removes its contacts on the server
    assert phone.sync().ok
    assert all(phone.store.get("contacts", p) is None for p in people)
    assert other.sync().ok
    assert other.store.find("companies", company_id) is None
    for d in (phone, other):
        assert_in_step(d, COMPANY_CONTACTS, server)


def test_a_lost_answer_of_a_one_to_many_push_creates_no_duplicates(server, device):
    phone = device([COMPANY_CONTACTS])
    company, _people = new_company_with_contacts(phone.store, contacts=3)
    name = phone.store.get("companies", company).data["name"]
    phone.transport.add(drop_response, method="POST")
    assert phone.sync().ok
    state = server.state(phone.token, COMPANY_CONTACTS)
    [company_id] = [i for i, c in state["companies"].items() if c["name"] == name]
    assert sum(c["company"] == company_id for c in state["contacts"].values()) == 3
    assert_in_step(phone, COMPANY_CONTACTS, server)


def test_a_contact_moved_to_a_new_company_is_rewritten_with_the_answer(server, device):
    phone = device([COMPANY_CONTACTS])
    _first, [person] = new_company_with_contacts(phone.store, contacts=1)
    assert phone.sync().ok
    second = phone.store.create("companies", {"name": f"Second {uuid.uuid4().hex[:8]}", "address": "", "phone": ""})
    phone.store.update("contacts", person, {"company": {"local_id": second}})
    assert phone.sync().ok
    assert phone.store.get("contacts", person).data["company"] == phone.store.get("companies", second).id
    assert_in_step(phone, COMPANY_CONTACTS, server)
