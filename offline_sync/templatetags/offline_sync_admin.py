"""``{% pending_conflicts %}``: how many sync conflicts wait, for an admin index.

``offline_sync/admin/index.html`` shows it above the app list; use it with
``admin.site.index_template = "offline_sync/admin/index.html"``, or load this
library in an index template of your own.
"""

from django import template
from django.urls import reverse

from ..admin import ConflictAdmin
from ..models import Conflict

register = template.Library()


@register.inclusion_tag("offline_sync/admin/pending_conflicts.html", takes_context=True)
def pending_conflicts(context):
    """Each conflicts admin of this site the user may view, with its pending count and list URL."""
    request = context.request  # set by the admin's TemplateResponse, with or without the request context processor
    site = _current_site(request)
    lists = []
    for model, model_admin in site._registry.items() if site else ():
        if isinstance(model_admin, ConflictAdmin) and model_admin.has_view_permission(request):
            pending = model_admin.get_queryset(request).filter(status=Conflict.Status.PENDING).count()
            name = f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist"
            lists.append({"name": model._meta.verbose_name_plural, "url": reverse(name), "pending": pending})
    return {"conflict_lists": lists}


def _current_site(request):
    """The admin site serving this request, or None outside the admin.

    Its views carry their site (``AdminSite.admin_view`` sets ``admin_site``):
    exact even when two sites share a name.
    """
    return getattr(getattr(request.resolver_match, "func", None), "admin_site", None)
