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
    # A push's own changes, sent ahead of the watermark while a transaction older
    # than the push still runs: the rows of stamp ``own`` are delivered up to
    # ``(own_source, own_key)`` (``own_source == -1``: none yet). See pull.py.
    own: int = 0
    own_source: int = -1
    own_key: object = None

    @property
    def needs_since(self):
        """The oldest stamp whose tombstones the holder of this position still needs."""
        return max(self.stamp, self.floor)

    def encode(self):
        parts = [self.stamp, self.source, _text(self.key), self.floor, self.own, self.own_source, _text(self.own_key)]
        raw = json.dumps(parts, separators=(",", ":"))
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
            return cls(*_parse(_SIGNER.unsign(text[len(_PREFIX) :]), 7))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, signing.BadSignature):
            raise InvalidCursor(field) from None

    def covers(self, stamp, rank, key):
        """True if a change at ``(stamp, rank, key)`` was delivered up to this position."""
        if self.own and stamp == self.own and _at_or_before(rank, key, self.own_source, self.own_key):
            return True
        if stamp != self.stamp:
            return stamp < self.stamp
        return _at_or_before(rank, key, self.source, self.key)

    def own_after(self, rank, key_field="pk"):
        """Q for the rows of stamp ``own`` and source ``rank`` not yet delivered; None if all were."""
        if rank < self.own_source:
            return None
        if rank > self.own_source:
            return Q(sync_stamp=self.own)
        return Q(sync_stamp=self.own, **{f"{key_field}__gt": self.own_key})

    def after(self, rank, key_field="pk"):
        """Q for the rows of source ``rank`` that come after this position."""
        if rank < self.source:
            return Q(sync_stamp__gt=self.stamp)
        if rank > self.source:
            return Q(sync_stamp__gte=self.stamp)
        # The first condition is implied by the other two; it gives the database the index range to read
        # (without it PostgreSQL walks the stamp index from its start: a page at the end of a million-row
        # full pull cost 7x its first).
        return Q(sync_stamp__gte=self.stamp) & (
            Q(sync_stamp__gt=self.stamp) | Q(sync_stamp=self.stamp, **{f"{key_field}__gt": self.key})
        )


EXPIRED = Position(-1)


def _text(key):
    """A key that is not an int (a UUID, say) travels as its text, which sorts the same way in the database."""
    return key if key is None or isinstance(key, int) else str(key)


def _at_or_before(rank, key, source, mine):
    if rank != source:
        return rank < source
    return (key if isinstance(mine, int) else str(key)) <= mine


def _parse(body, length):
    parts = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if not isinstance(parts, list) or len(parts) != length:
        raise ValueError
    stamp, source, key, *rest = parts
    _check_place(stamp, source, key)
    if rest:
        floor, own, own_source, own_key = rest
        if not (isinstance(floor, int) and floor >= 0):
            raise ValueError
        _check_place(own, own_source, own_key)
    return parts


def _check_place(stamp, source, key):
    if not (isinstance(stamp, int) and isinstance(source, int) and stamp >= 0 and source >= -1):
        raise ValueError
    if source >= 0 and not isinstance(key, (int, str)):
        raise ValueError
