from django.contrib import admin

from offline_sync.admin import EntityConflictAdmin

from .models import ConflictingItem, Item

admin.site.register(Item)


@admin.register(ConflictingItem)
class ConflictingItemAdmin(EntityConflictAdmin):
    synced_model = Item
