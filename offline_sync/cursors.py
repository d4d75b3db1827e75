"""The opaque cursor: a position in the commit-ordered stream of changes.

A position is ``(stamp, source, key)``: the client holds every change whose
``(sync_stamp, source rank, primary key)`` is at or before it, where each of an
endpoint's entities has two sources, its records (rank ``2i``) and its
tombstones (rank ``2i + 1``). ``source == -1`` means every change with a stamp
below ``stamp`` has been delivered.
"""

import base64
import binascii
import json
from dataclasses import dataclass

from django.core import signing
from django.db.models import Q

from .exceptions import InvalidCursor

# The cursor format's version. "2." cursors are signed with the SECRET_KEY, so
# a cursor that was edited, forged or truncated is refused, and no client can
# make up a position (one past a change, to skip conflict detection, say).
_PREFIX = "2."
_UNSIGNED_PREFIX = "1."  # issued before signing: answered 410, so devices resync
_SIGNER = signing.Signer(salt="offline_sync.cursor")


@dataclass(frozen=True, order=False)
class Position:
    stamp: int
    source: int = -1
    key: object = None
    # In a paged full pull, the first page's watermark: the device holds only
    # what this pull sent, and every deletion of that has a stamp at or above
    # it, so older purged tombstones cannot matter to it (see ``needs_since``).
    floor: int = 0

    @property
    def needs_since(self):
        """The oldest stamp whose tombstones the holder of this position still needs."""
        return max(self.stamp, self.floor)

    def encode(self):
        # A key that is not an int (a UUID, say) travels as its text, which
        # sorts the same way in the database.
        key = self.key if self.key is None or isinstance(self.key, int) else str(self.key)
        raw = json.dumps([self.stamp, self.source, key, self.floor], separators=(",", ":"))
        return _PREFIX + _SIGNER.sign(base64.urlsafe_b64encode(raw.encode()).decode().rstrip("="))

    @classmethod
    def decode(cls, text, field="since"):
        """Parse a cursor from ``field`` of a request; ``InvalidCursor`` if this server did not issue it.

        A well-formed cursor of the unsigned format this server issued before
        comes back as ``EXPIRED``: below every purge horizon, it answers 410.
        """
        if not isinstance(text, str):
            raise InvalidCursor(field)
        try:
            if text.startswith(_UNSIGNED_PREFIX):
                _parse(text[len(_UNSIGNED_PREFIX) :], 3)
                return EXPIRED
            if not text.startswith(_PREFIX):
                raise ValueError
            return cls(*_parse(_SIGNER.unsign(text[len(_PREFIX) :]), 4))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, signing.BadSignature):
            raise InvalidCursor(field) from None

    def covers(self, stamp, rank, key):
        """True if a change at ``(stamp, rank, key)`` is at or before this position."""
        if stamp != self.stamp:
            return stamp < self.stamp
        if rank != self.source:
            return rank < self.source
        return (key if isinstance(self.key, int) else str(key)) <= self.key

    def after(self, rank, key_field="pk"):
        """Q for the rows of source ``rank`` that come after this position."""
        if rank < self.source:
            return Q(sync_stamp__gt=self.stamp)
        if rank > self.source:
            return Q(sync_stamp__gte=self.stamp)
        return Q(sync_stamp__gt=self.stamp) | Q(sync_stamp=self.stamp, **{f"{key_field}__gt": self.key})


EXPIRED = Position(-1)


def _parse(body, length):
    parts = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if not isinstance(parts, list) or len(parts) != length:
        raise ValueError
    stamp, source, key, *floor = parts
    if not (isinstance(stamp, int) and isinstance(source, int) and stamp >= 0 and source >= -1):
        raise ValueError
    if source >= 0 and not isinstance(key, (int, str)):
        raise ValueError
    if floor and not (isinstance(floor[0], int) and floor[0] >= 0):
        raise ValueError
    return stamp, source, key, *floor
