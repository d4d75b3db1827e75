"""A database router for hosts with PostgreSQL streaming replicas: reads there, writes on the primary.

Pulls read the entities' read database (``router.db_for_read``), so they go to
a replica; a push, its answer and a conflict resolution run on the write
database (``router.db_for_write``), the primary. A pull whose cursor is ahead
of the replica it lands on (the replica lags behind a push's answer, or behind
another replica) is answered from the primary. See docs/deployment.md.

    DATABASE_ROUTERS = ["offline_sync.routers.PullsFromReplicas"]

reads from the alias ``"replica"``; a subclass names others::

    class MyRouter(PullsFromReplicas):
        primary = "default"
        replicas = ("replica1", "replica2")
"""

import random


class PullsFromReplicas:
    primary = "default"
    replicas = ("replica",)
    # Read on the primary all the same: a token or a user made a moment ago must work on the next request,
    # which a replica that has not replayed it yet would refuse (401, 403).
    primary_apps = ("auth", "authtoken", "sessions")

    def db_for_read(self, model, **hints):
        if model._meta.app_label in self.primary_apps:
            return self.primary
        # Each read picks one: a pull's queries all go to the database its first one chose.
        return random.choice(self.replicas)

    def db_for_write(self, model, **hints):
        return self.primary

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, its copies

    def allow_migrate(self, db, app_label, **hints):
        return db == self.primary  # a replica gets its schema by replaying the primary's WAL
