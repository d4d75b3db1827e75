"""The model zoo: synced models with the features host projects actually have.

| model | features |
|---|---|
| ``Zone`` | ``unique=True`` code with a ``RegexValidator``; ``MinValueValidator``; ``choices``;
  nullable ``DateField`` |
| ``Enclosure`` | UUID scope field ``team``; FK ``to_field`` (``Zone.code``) with ``on_delete=PROTECT``; two-field
  ``UniqueConstraint``; ``DecimalField``, ``BooleanField``, blank ``TextField`` |
| ``Species`` | text primary key (server-made default); one-field ``UniqueConstraint``; ``choices``; ``JSONField`` |
| ``Animal`` | UUID primary key; UUID scope field ``team``; FK ``on_delete=RESTRICT`` to a text pk; nullable FK;
  ``unique_together``; ``DateField``, ``TimeField``, ``DecimalField``, ``JSONField`` |
| ``Observation`` | scope through a foreign key to the user model; FK to a UUID pk; ``DurationField``,
  ``TimeField``, nullable ``JSONField`` |
| ``FieldNote`` | a proxy of ``Observation``, offered as its own entity |
| ``Exhibit`` / ``Aquarium`` | multi-table inheritance; ``db_default``; ``TimeField``, ``DecimalField`` |
| ``Volunteer`` | soft delete: ``objects`` hides inactive rows, ``all_objects`` is the base manager;
  ``DurationField``, nullable ``DecimalField`` |

Each synced model has a ``Conflict`` proxy, for its own conflicts entry in the admin (``admin.py``).
"""

import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from offline_sync.models import Conflict, SyncManager, SyncModel

TEAM_NAMESPACE = uuid.UUID("5d2c7f0e-9a47-4b8e-8f43-2f1f6f3b7a10")


def team_of(user):
    """The team a user works in, as stored in ``team`` scope fields: a UUID derived from the user name."""
    return uuid.uuid5(TEAM_NAMESPACE, user.get_username())


def new_species_code():
    """A text primary key made by the server (clients never choose ids)."""
    return f"sp-{secrets.token_hex(6)}"


class Zone(SyncModel):
    """An area of the zoo, shared by every keeper. Enclosures refer to it by ``code``."""

    class Climate(models.TextChoices):
        TROPICAL = "tropical"
        ARID = "arid"
        TEMPERATE = "temperate"
        POLAR = "polar"

    code = models.CharField(
        max_length=4,
        unique=True,
        validators=[RegexValidator(r"^[A-Z]{2}[0-9]{2}\Z", "Two capital letters, then two digits.")],
    )
    name = models.CharField(max_length=100)
    climate = models.CharField(max_length=10, choices=Climate.choices)
    capacity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    opened_on = models.DateField(null=True, blank=True)

    def __str__(self):
        return self.code


class Enclosure(SyncModel):
    """Kept by one team (a UUID scope); in a zone named by its code, which it protects from deletion."""

    team = models.UUIDField(db_index=True)
    zone = models.ForeignKey(Zone, to_field="code", on_delete=models.PROTECT, related_name="enclosures")
    name = models.CharField(max_length=100)
    area_m2 = models.DecimalField(max_digits=9, decimal_places=2)
    heated = models.BooleanField(default=False)
    notes = models.TextField(blank=True)

    sync_scope_fields = ("team",)

    class Meta(SyncModel.Meta):
        constraints = [models.UniqueConstraint(fields=["zone", "name"], name="zoo_enclosure_unique_name_in_zone")]

    def __str__(self):
        return f"{self.zone_id}/{self.name}"


class Species(SyncModel):
    """Shared reference data with a text primary key made by the server."""

    class Status(models.TextChoices):
        LEAST_CONCERN = "LC", "Least concern"
        NEAR_THREATENED = "NT", "Near threatened"
        VULNERABLE = "VU", "Vulnerable"
        ENDANGERED = "EN", "Endangered"
        CRITICAL = "CR", "Critically endangered"

    code = models.CharField(primary_key=True, max_length=16, default=new_species_code)
    latin_name = models.CharField(max_length=200)
    common_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=2, choices=Status.choices, default=Status.LEAST_CONCERN)
    traits = models.JSONField(default=dict, blank=True)

    class Meta(SyncModel.Meta):
        verbose_name_plural = "species"
        constraints = [models.UniqueConstraint(fields=["latin_name"], name="zoo_species_unique_latin_name")]

    def __str__(self):
        return self.latin_name


class Animal(SyncModel):
    """An animal in a team's care: a UUID primary key, and a species that cannot go while it lives."""

    class Sex(models.TextChoices):
        FEMALE = "f"
        MALE = "m"
        UNKNOWN = "u"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    team = models.UUIDField(db_index=True)
    species = models.ForeignKey(Species, on_delete=models.RESTRICT, related_name="animals")
    enclosure = models.ForeignKey(Enclosure, null=True, blank=True, on_delete=models.SET_NULL, related_name="animals")
    name = models.CharField(max_length=100)
    sex = models.CharField(max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    born_on = models.DateField(null=True, blank=True)
    fed_at = models.TimeField(null=True, blank=True)
    weight_kg = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    diet = models.JSONField(default=list, blank=True)

    sync_scope_fields = ("team",)

    class Meta(SyncModel.Meta):
        unique_together = [("team", "name")]

    def __str__(self):
        return self.name


class Observation(SyncModel):
    """A keeper's private note on an animal: scoped by a foreign key to the user model."""

    class Kind(models.TextChoices):
        HEALTH = "health"
        BEHAVIOUR = "behaviour"
        FEEDING = "feeding"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    animal = models.ForeignKey(Animal, on_delete=models.CASCADE, related_name="observations")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BEHAVIOUR)
    seen_on = models.DateField()
    seen_at = models.TimeField(null=True, blank=True)
    lasted = models.DurationField(null=True, blank=True)
    measurements = models.JSONField(null=True, blank=True)
    text = models.TextField(blank=True)

    sync_scope_fields = ("owner",)

    def __str__(self):
        return f"{self.kind} of {self.animal_id} on {self.seen_on}"


class FieldNote(Observation):
    """The same rows as ``Observation`` offered as an entity of their own (a proxy model)."""

    class Meta(SyncModel.Meta):
        proxy = True


class Exhibit(SyncModel):
    """A concrete synced parent of multi-table inheritance; ``visitors_per_hour`` has a database default."""

    title = models.CharField(max_length=200)
    opens_at = models.TimeField()
    closes_at = models.TimeField()
    free_entry = models.BooleanField(default=False)
    visitors_per_hour = models.PositiveIntegerField(db_default=60)

    def __str__(self):
        return self.title


class Aquarium(Exhibit):
    """A child of ``Exhibit``: its own table, joined to the parent's row by ``exhibit_ptr``."""

    litres = models.PositiveIntegerField()
    salt_water = models.BooleanField(default=False)
    temperature_c = models.DecimalField(max_digits=4, decimal_places=1)


class ActiveManager(SyncManager):
    def get_queryset(self):
        return super().get_queryset().filter(active=True)


class Volunteer(SyncModel):
    """Soft delete: the default manager hides inactive volunteers; the base manager sees every row."""

    name = models.CharField(max_length=100)
    phone = models.CharField(max_length=20, blank=True)
    shift = models.DurationField(default=timedelta(hours=4))
    hourly_rate = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    active = models.BooleanField(default=True)

    objects = ActiveManager()
    all_objects = SyncManager()

    class Meta(SyncModel.Meta):
        base_manager_name = "all_objects"

    def __str__(self):
        return self.name


# The conflicts of each synced model, as its own admin entry (offline_sync.admin.EntityConflictAdmin).


class ConflictingZone(Conflict):
    class Meta:
        proxy = True


class ConflictingEnclosure(Conflict):
    class Meta:
        proxy = True


class ConflictingSpecies(Conflict):
    class Meta:
        proxy = True
        verbose_name_plural = "conflicting species"


class ConflictingAnimal(Conflict):
    class Meta:
        proxy = True


class ConflictingObservation(Conflict):
    """Field notes too: conflicts of a proxy are recorded under its concrete model."""

    class Meta:
        proxy = True


class ConflictingExhibit(Conflict):
    class Meta:
        proxy = True


class ConflictingAquarium(Conflict):
    class Meta:
        proxy = True


class ConflictingVolunteer(Conflict):
    class Meta:
        proxy = True
