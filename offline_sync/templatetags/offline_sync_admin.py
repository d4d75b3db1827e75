"""``{% pending_conflicts %}``: how many sync conflicts wait, for an admin index.

``offline_sync/admin/index.html`` shows it above the recent actions; use it with
``admin.site.index_template = "offline_sync/admin/index.html"``, or load this
library in an index template of your own.
"""

from django import template
from django.contrib.admin.sites import all_sites
from django.urls import reverse

from ..admin import ConflictAdmin
from ..models import Conflict

register = template.Library()


@register.inclusion_tag("offline_sync/admin/pending_conflicts.html", takes_context=True)
def pending_conflicts(context):
    """Each conflicts admin of this site the user may view, with its pending count and list URL."""
    request = context["request"]
    site = _current_site(request)
    lists = []
    for model, model_admin in site._registry.items() if site else ():
        if isinstance(model_admin, ConflictAdmin) and model_admin.has_view_permission(request):
            pending = model_admin.get_queryset(request).filter(status=Conflict.Status.PENDING).count()
            name = f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist"
            lists.append({"name": model._meta.verbose_name_plural, "url": reverse(name), "pending": pending})
    return {"conflict_lists": lists}


def _current_site(request):
    """The admin site serving this request (its URL namespace), or None outside the admin."""
    namespace = getattr(request.resolver_match, "namespace", None)
    return next((site for site in all_sites if site.name == namespace), None)
