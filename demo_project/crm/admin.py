from django.contrib import admin

from .models import Company


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "address", "phone", "version", "modified_on"]
    search_fields = ["name", "address", "phone"]
    ordering = ["name"]
    readonly_fields = ["version", "modified_on"]
