from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "demo_project.catalog"
    label = "catalog"
    verbose_name = "Catalog"
    default_auto_field = "django.db.models.BigAutoField"
