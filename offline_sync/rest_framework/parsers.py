"""A JSON parser that enforces the push byte limit while it reads.

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB) only guards ``request.body``;
DRF parsers read the stream directly. This one stops reading one byte past
``MAX_PUSH_BYTES``, so an oversized body is refused without being held whole.
"""

import json
import re

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from ..conf import sync_settings
from ..exceptions import PayloadTooLarge


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


class SyncJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = sync_settings.MAX_PUSH_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(sync_settings.MAX_PUSH_RECORDS, limit)
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"Not valid UTF-8 JSON: {exc}") from None
        # Valid UTF-8 decodes to no NUL and no lone surrogate: only \u escapes
        # can make them, so the body is walked only when it has such an escape.
        if b"\\u0000" in raw:
            _refuse(data, [], lambda text: "\x00" in text, "A NUL character cannot be stored.")
        if _SURROGATE_ESCAPE.search(raw):
            _refuse(data, [], _LONE_SURROGATE.search, "Not valid Unicode: a lone surrogate.")
        return data


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
