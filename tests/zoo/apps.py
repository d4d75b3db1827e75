from django.apps import AppConfig


class ZooConfig(AppConfig):
    """The model zoo: synced models with the features host projects have (tests/test_zoo.py)."""

    name = "tests.zoo"
    label = "zoo"
    default_auto_field = "django.db.models.BigAutoField"
