"""The JSON parser of sync endpoints: the push byte limit, and only JSON a database can store.

DRF hands a ``JSONParser`` subclass ``io.BytesIO(request.body)`` (3.17.2 and
later), so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB) would refuse a
valid push with an HTML 400 before this parser ran. This one is a
``BaseParser``: it reads the request stream itself and stops one byte past
``MAX_PUSH_BYTES``, so an oversized body is refused (413) without being held
whole. ``SyncRequest`` reads a chunked body (no ``Content-Length``) that DRF
would take as empty.
"""

import json
import re

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from ..conf import sync_settings
from ..exceptions import PayloadTooLarge

# Far deeper than any push (a record's JSON field value included), far shallower than
# what would exhaust Python's or PostgreSQL's stack on the way to the database.
MAX_DEPTH = 64


class SyncRequest(Request):
    """A DRF request that also reads a chunked body, whose length nobody declared."""

    def _load_stream(self):
        meta = self._request.META
        chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not meta.get("CONTENT_LENGTH") and "wsgi.input" in meta:
            # The WSGI server decodes the chunks; Django's stream would read 0 bytes.
            self._stream = meta["wsgi.input"]
        else:
            super()._load_stream()


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _object_without_duplicate_keys(pairs):
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"duplicate key {duplicate!r}")
    return value


class SyncJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = sync_settings.MAX_PUSH_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(sync_settings.MAX_PUSH_RECORDS, limit)
        try:
            data = json.loads(
                raw.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicate_keys
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"Not valid UTF-8 JSON: {exc}") from None
        except RecursionError:
            raise ParseError(f"JSON nested more than {MAX_DEPTH} levels deep.") from None
        if _depth(data) > MAX_DEPTH:
            raise ParseError(f"JSON nested more than {MAX_DEPTH} levels deep.")
        # Valid UTF-8 decodes to no NUL and no lone surrogate: only \u escapes
        # can make them, so the body is walked only when it has such an escape.
        if b"\\u0000" in raw:
            _refuse(data, [], lambda text: "\x00" in text, "A NUL character cannot be stored.")
        if _SURROGATE_ESCAPE.search(raw):
            _refuse(data, [], _LONE_SURROGATE.search, "Not valid Unicode: a lone surrogate.")
        return data


def _depth(value):
    """How deeply ``value`` nests lists and objects, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((item, depth + 1) for item in value if isinstance(item, (dict, list)))
    return deepest


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse(value, path, is_bad, message):
    """Refuse a string (keys included) that PostgreSQL cannot store in text or JSON (protocol 2)."""
    if isinstance(value, str):
        if is_bad(value):
            detail = [message]
            for key in reversed(path or ["body"]):
                detail = {key: detail}
            raise ValidationError(detail)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse(key, path, is_bad, message)
            _refuse(item, [*path, key], is_bad, message)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse(item, [*path, str(index)], is_bad, message)
