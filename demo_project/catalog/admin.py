from django.contrib import admin

from .models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "price", "version", "modified_on"]
    list_filter = ["category"]
    search_fields = ["name"]
    ordering = ["name"]
    readonly_fields = ["version", "modified_on"]
