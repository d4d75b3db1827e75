from django.contrib import admin

from offline_sync.admin import EntityConflictAdmin

from . import models

for model in (
    models.Zone,
    models.Enclosure,
    models.Species,
    models.Animal,
    models.Observation,
    models.FieldNote,
    models.Exhibit,
    models.Aquarium,
    models.Volunteer,
):
    admin.site.register(model)


@admin.register(models.ConflictingZone)
class ConflictingZoneAdmin(EntityConflictAdmin):
    synced_model = models.Zone


@admin.register(models.ConflictingEnclosure)
class ConflictingEnclosureAdmin(EntityConflictAdmin):
    synced_model = models.Enclosure


@admin.register(models.ConflictingSpecies)
class ConflictingSpeciesAdmin(EntityConflictAdmin):
    synced_model = models.Species


@admin.register(models.ConflictingAnimal)
class ConflictingAnimalAdmin(EntityConflictAdmin):
    synced_model = models.Animal


@admin.register(models.ConflictingObservation)
class ConflictingObservationAdmin(EntityConflictAdmin):
    """Field notes' conflicts too: a proxy's conflicts are recorded under its concrete model."""

    synced_model = models.Observation


@admin.register(models.ConflictingExhibit)
class ConflictingExhibitAdmin(EntityConflictAdmin):
    synced_model = models.Exhibit


@admin.register(models.ConflictingAquarium)
class ConflictingAquariumAdmin(EntityConflictAdmin):
    synced_model = models.Aquarium


@admin.register(models.ConflictingVolunteer)
class ConflictingVolunteerAdmin(EntityConflictAdmin):
    synced_model = models.Volunteer
