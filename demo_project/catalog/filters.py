import django_filters

from .models import Product


class ProductFilter(django_filters.FilterSet):
    """The subset a device keeps: `?category=Drinks` syncs only that category."""

    class Meta:
        model = Product
        fields = {"category": ["exact"]}
