"""A JSON parser that enforces the push byte limit while it reads.

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB) only guards ``request.body``;
DRF parsers read the stream directly. This one stops reading one byte past
``MAX_PUSH_BYTES``, so an oversized body is refused without being held whole.
"""

import json

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
        if b"\\u0000" in raw:  # cheap test first; then find where
            _refuse_nul(data, [])
        return data


def _refuse_nul(value, path):
    """No NUL anywhere (keys included): PostgreSQL cannot store it in text or JSON (protocol 2)."""
    if isinstance(value, str):
        if "\x00" in value:
            detail = ["A NUL character cannot be stored."]
            for key in reversed(path or ["body"]):
                detail = {key: detail}
            raise ValidationError(detail)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, path)
            _refuse_nul(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(item, [*path, str(index)])
