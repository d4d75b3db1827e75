"""A minimal protocol client for tests: keeps a replica the way a device would."""


class Replica:
    """Applies pull pages to a local copy, per protocol section 3."""

    def __init__(self, client, url, **params):
        self.client, self.url, self.params = client, url, params
        self.cursor = None
        self.data = {}  # entity -> {id: record}

    def page(self, **extra):
        params = {**self.params, **extra}
        if self.cursor is not None:
            params["since"] = self.cursor
        response = self.client.get(self.url, params)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["full"] == (self.cursor is None)
        for entity, change in body["changes"].items():
            ids = [r["id"] for r in change["records"]]
            assert not set(ids) & set(change["deleted"]), "an id in both records and deleted"
            table = {} if body["full"] else self.data.setdefault(entity, {})
            for record in change["records"]:
                table[record["id"]] = record
            for pk in change["deleted"]:
                table.pop(pk, None)
            self.data[entity] = table
        self.cursor = body["cursor"]
        return body

    def sync(self, **extra):
        """Pull until has_more is false; return the number of pages."""
        pages = 1
        while self.page(**extra)["has_more"]:
            pages += 1
        return pages

    def ids(self, entity):
        return set(self.data.get(entity, {}))
