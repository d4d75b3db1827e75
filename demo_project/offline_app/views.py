"""The offline web app's page: a template that loads the bundle built from clients/js/examples/offline-app/."""

from pathlib import Path

from django.views.generic import TemplateView

BUNDLE = Path(__file__).resolve().parent / "static" / "offline_app" / "build" / "app.js"


class OfflineAppView(TemplateView):
    """`/app/`: companies and their contacts, kept in IndexedDB, synced with `/api/sync/crm/`."""

    template_name = "offline_app/index.html"

    def get_context_data(self, **kwargs):
        # Not built yet (no node on this machine, say): the page says how to build it instead of failing.
        return {**super().get_context_data(**kwargs), "built": BUNDLE.exists()}
