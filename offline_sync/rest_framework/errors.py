"""The protocol's error envelope ``{"error": code, "detail": ...}`` (section 7).

Sync views install this handler themselves (``get_exception_handler``), so a
host project keeps its own global ``EXCEPTION_HANDLER``.
"""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from ..exceptions import ERROR_STATUS, SyncError

logger = logging.getLogger("django.request")

# DRF exception -> (status, wire code), the status from ERROR_STATUS; checked in order, so subclasses first.
_DRF_CODES = [
    (exc_class, ERROR_STATUS[code], code)
    for exc_class, code in [
        (exceptions.ValidationError, "validation_error"),
        (exceptions.ParseError, "validation_error"),
        (exceptions.NotAuthenticated, "not_authenticated"),
        (exceptions.AuthenticationFailed, "not_authenticated"),
        (exceptions.PermissionDenied, "permission_denied"),
        (exceptions.NotFound, "not_found"),
        (exceptions.MethodNotAllowed, "method_not_allowed"),
        (exceptions.NotAcceptable, "not_acceptable"),
        (exceptions.UnsupportedMediaType, "unsupported_media_type"),
        (exceptions.Throttled, "throttled"),
    ]
]


def error_response(code, detail, status_code, headers=None):
    return Response({"error": code, "detail": detail}, status=status_code, headers=headers)


def sync_exception_handler(exc, context):
    """Answer every failure in the envelope, a server failure included (protocol section 7).

    Whatever the request changed is rolled back, with ``ATOMIC_REQUESTS`` too.
    """
    set_rollback()
    response = _known_error_response(exc)
    if response is None:
        response = _server_error_response(exc, context.get("request"))
    return response


def _known_error_response(exc):
    if isinstance(exc, SyncError):
        response = error_response(exc.code, exc.detail, exc.status)
        if hasattr(exc, "conflicts"):
            response.data["conflicts"] = exc.conflicts  # 409 unresolved_conflicts (protocol 4.2)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    for exc_class, status_code, code in _DRF_CODES:
        if isinstance(exc, exc_class):
            headers = {}
            if getattr(exc, "auth_header", None):
                headers["WWW-Authenticate"] = exc.auth_header
            if getattr(exc, "wait", None) is not None:
                headers["Retry-After"] = str(int(exc.wait))
            detail = exc.detail
            if isinstance(exc, exceptions.ParseError):
                detail = {"body": [str(detail)]}
            return error_response(code, detail, status_code, headers)
    if isinstance(exc, exceptions.APIException):
        return error_response(exc.default_code, exc.detail, exc.status_code)
    return None


def _server_error_response(exc, request):
    """A failure of the server (a bug, the database down): 5xx ``server_error``, logged as Django would.

    The client cannot tell a bug from an outage, and must not drop its
    changes: either way it retries later with the same ``sync_id``.
    """
    unavailable = isinstance(exc, (OperationalError, InterfaceError))  # database down, deadlock, ...
    status_code = 503 if unavailable else 500
    logger.error(
        "%s: %s",
        "Service Unavailable" if unavailable else "Internal Server Error",
        getattr(request, "path", "?"),
        exc_info=exc,
        extra={"status_code": status_code, "request": getattr(request, "_request", request)},
    )
    detail = "The server failed; nothing was applied. Retry later with the same sync_id."
    if settings.DEBUG:
        detail = f"{detail} ({type(exc).__name__}: {exc})"
    response = error_response("server_error", detail, status_code, {"Retry-After": "30"} if unavailable else None)
    response._has_been_logged = True  # by us, with the traceback; Django's log_response would repeat it
    return response


@csrf_exempt  # a mistyped POST answers the JSON 404, not Django's CSRF page
def not_found_view(request, *args, **kwargs):
    """Catch-all for a sync URL prefix: unknown endpoints answer 404 in the envelope."""
    from django.http import JsonResponse

    return JsonResponse(
        {"error": "not_found", "detail": f"No sync endpoint at {request.path}."}, status=ERROR_STATUS["not_found"]
    )
