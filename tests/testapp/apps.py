from django.apps import AppConfig


class TestappConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from offline_sync.registry import register
        from tests.thirdparty.models import Label

        register(Label, scope_fields=("owner",))
