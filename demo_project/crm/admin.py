from django.contrib import admin

from offline_sync.admin import EntityConflictAdmin

from .models import Company, ConflictingCompany, Contact


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "address", "phone", "version", "modified_on"]
    search_fields = ["name", "address", "phone"]
    ordering = ["name"]
    readonly_fields = ["version", "modified_on"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "company", "owner", "email", "phone", "version", "modified_on"]
    list_filter = ["owner"]
    search_fields = ["name", "email", "company__name"]
    readonly_fields = ["version", "modified_on"]


@admin.register(ConflictingCompany)
class ConflictingCompanyAdmin(EntityConflictAdmin):
    synced_model = Company


# The admin index says how many sync conflicts are pending.
admin.site.index_template = "offline_sync/admin/index.html"
