"""The offline web app's page and service worker, built from clients/js/examples/offline-app/ (npm run build:app)."""

from pathlib import Path

from django.http import FileResponse, Http404
from django.views import View
from django.views.generic import TemplateView

BUILD = Path(__file__).resolve().parent / "static" / "offline_app" / "build"


class OfflineAppView(TemplateView):
    """`/app/`: companies and their contacts, kept in IndexedDB, synced with `/api/sync/crm/`."""

    template_name = "offline_app/index.html"

    def get_context_data(self, **kwargs):
        # Not built yet (no node on this machine, say): the page says how to build it instead of failing.
        return {**super().get_context_data(**kwargs), "built": (BUILD / "app.js").exists()}


class ServiceWorkerView(View):
    """`/app/sw.js`: served under /app/ (not /static/) so that its scope covers the page."""

    def get(self, request):
        worker = BUILD / "sw.js"
        if not worker.exists():
            raise Http404("The offline web app is not built: cd clients/js && npm ci && npm run build:app")
        response = FileResponse(worker.open("rb"), content_type="text/javascript")
        response["Cache-Control"] = "no-cache"  # a new build reaches the browsers at their next visit
        return response
