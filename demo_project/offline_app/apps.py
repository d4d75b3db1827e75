from django.apps import AppConfig


class OfflineAppConfig(AppConfig):
    """The offline web app at /app/: a page that syncs companies and contacts through the TypeScript client."""

    name = "demo_project.offline_app"
    label = "offline_app"
    verbose_name = "Offline web app"
