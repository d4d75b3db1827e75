"""HTTP to the server (httpx): authentication, timeouts, and retries of what the network or the server failed."""

import email.utils
import json
import logging
import time
from datetime import datetime, timezone

import httpx

from . import errors
from .errors import SyncError

logger = logging.getLogger("offline_sync_client")


class Connection:
    """One server: ``base_url`` (``http://127.0.0.1:8000``), its token, and how hard to try.

    - ``timeout``: seconds for connecting, and for each read and write.
    - ``connect_retries``: httpx's own retries of a failed connection attempt.
    - ``max_attempts``: tries of one request when the network fails, the server
      answers 5xx or 429; between them ``backoff`` seconds, doubled each time,
      or the server's ``Retry-After``. A wait longer than ``max_retry_wait``
      is not waited for: the request fails with ``retry_after`` set, for a later sync.
    - ``transport``: an ``httpx.BaseTransport`` to use instead of the default
      (tests wrap it to inject faults).
    - ``auth``: any ``httpx.Auth``, for a server that authenticates otherwise than by token.

    Every request the client makes is safe to repeat (a push carries its
    ``sync_id``, a resolution is answered the same when repeated), so each is
    retried the same way.
    """

    def __init__(
        self,
        base_url,
        *,
        token=None,
        auth=None,
        timeout=10.0,
        connect_retries=2,
        max_attempts=4,
        backoff=0.5,
        max_retry_wait=30.0,
        transport=None,
        auth_path="/api/auth/token/",
    ):
        self.token = token
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self.auth_path = auth_path
        self._http = httpx.Client(
            base_url=base_url,
            auth=auth,
            timeout=timeout,
            transport=transport if transport is not None else httpx.HTTPTransport(retries=connect_retries),
            headers={"Accept": "application/json", "User-Agent": "offline-sync-client"},
        )

    def close(self):
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def login(self, username, password):
        """Get a token for ``username`` (the demo's ``POST /api/auth/token/``) and use it from now on."""
        body = json.dumps({"username": username, "password": password})
        try:
            answer = self.request("POST", self.auth_path, body=body)
        except SyncError as error:
            if error.status == 400:  # DRF's answer to wrong credentials
                raise SyncError(
                    errors.NOT_AUTHENTICATED, f"Login refused for {username!r}.", status=400, detail=error.detail
                ) from None
            raise
        if not isinstance(answer.get("token"), str):
            raise SyncError(errors.BAD_RESPONSE, f"{self.auth_path} answered without a token.")
        self.token = answer["token"]
        return self.token

    def request(self, method, path, *, params=None, body=None):
        """Send one request (``body``: JSON text, sent as is); return the decoded JSON answer.

        Raises ``SyncError``: with the server's code for an error answer,
        ``network_error`` when no answer came.
        """
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        content = body.encode() if body is not None else None
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, path, params=params, content=content, headers=headers)
            except httpx.TransportError as exc:  # refused, reset, dropped mid-answer, timed out
                error = SyncError(errors.NETWORK_ERROR, f"{method} {path}: {type(exc).__name__}: {exc}")
            else:
                if response.status_code < 400:
                    return _decode(response)
                error = _error(response)
            if not error.retryable or attempt >= self.max_attempts:
                raise error
            wait = error.retry_after if error.retry_after is not None else self.backoff * 2 ** (attempt - 1)
            if wait > self.max_retry_wait:
                if error.retry_after is None:
                    error.retry_after = wait
                raise error
            logger.info(
                "%s %s failed (%s); try %d of %d in %.1fs", method, path, error, attempt + 1, self.max_attempts, wait
            )
            time.sleep(wait)


def _decode(response):
    try:
        answer = response.json()
    except ValueError:
        raise SyncError(
            errors.BAD_RESPONSE, f"{response.request.url} answered {response.status_code} with no JSON."
        ) from None
    if not isinstance(answer, dict):
        raise SyncError(errors.BAD_RESPONSE, f"{response.request.url} answered JSON that is not an object.")
    return answer


def _error(response):
    """The ``SyncError`` of an error answer (PROTOCOL.md section 7), whatever its body."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    if status >= 500:
        code = errors.SERVER_ERROR  # whatever the body says: a proxy's 502 page is a server failure too
    elif status == 429:
        code = errors.THROTTLED
    else:
        code = body.get("error") if isinstance(body.get("error"), str) else f"http_{status}"
    detail = body.get("detail")
    message = f"{response.request.method} {response.request.url.path}: {status} {code}"
    if detail is not None:
        message += f": {detail}"
    return SyncError(
        code,
        message,
        status=status,
        detail=detail if detail is not None else (body or None),
        retry_after=_retry_after(response.headers.get("Retry-After")),
        conflicts=body.get("conflicts") or (),
    )


def _retry_after(value):
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
