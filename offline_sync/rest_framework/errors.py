"""The protocol's error envelope ``{"error": code, "detail": ...}`` (section 7).

Sync views install this handler themselves (``get_exception_handler``), so a
host project keeps its own global ``EXCEPTION_HANDLER``.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from ..exceptions import SyncError

# DRF exception -> (status, wire code); checked in order, so subclasses first.
_DRF_CODES = [
    (exceptions.ValidationError, 400, "validation_error"),
    (exceptions.ParseError, 400, "validation_error"),
    (exceptions.NotAuthenticated, 401, "not_authenticated"),
    (exceptions.AuthenticationFailed, 401, "not_authenticated"),
    (exceptions.PermissionDenied, 403, "permission_denied"),
    (exceptions.NotFound, 404, "not_found"),
    (exceptions.MethodNotAllowed, 405, "method_not_allowed"),
    (exceptions.NotAcceptable, 406, "not_acceptable"),
    (exceptions.UnsupportedMediaType, 415, "unsupported_media_type"),
    (exceptions.Throttled, 429, "throttled"),
]


def error_response(code, detail, status_code, headers=None):
    return Response({"error": code, "detail": detail}, status=status_code, headers=headers)


def sync_exception_handler(exc, context):
    """Answer every expected failure in the envelope; leave real bugs to Django (500)."""
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


def not_found_view(request, *args, **kwargs):
    """Catch-all for a sync URL prefix: unknown endpoints answer 404 in the envelope."""
    from django.http import JsonResponse

    return JsonResponse(
        {"error": "not_found", "detail": f"No sync endpoint at {request.path}."}, status=status.HTTP_404_NOT_FOUND
    )
