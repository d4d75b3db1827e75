"""Sync endpoints of the model zoo: per group of entities, a pull, a last-write-wins and a conflict-detection view.

Each model has its own group, so that one model's failure never hides another's; a child's group carries its
parent too (one-to-many, protocol 4.3).
"""

from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import ConflictDetectionSyncView, LastWriteWinsSyncView, ReadOnlySyncView

from .models import Animal, Aquarium, Enclosure, Exhibit, FieldNote, Observation, Species, Volunteer, Zone, team_of


def by_team(request):
    return {"team": team_of(request.user)}


def by_owner(request):
    return {"owner": request.user}


zones = SyncEntity("zones", Zone)
enclosures = SyncEntity("enclosures", Enclosure, scope=by_team)
species = SyncEntity("species", Species)
animals = SyncEntity("animals", Animal, scope=by_team)
observations = SyncEntity("observations", Observation, scope=by_owner)
field_notes = SyncEntity("field_notes", FieldNote, scope=by_owner, read_only_fields=("owner",))
exhibits = SyncEntity("exhibits", Exhibit)
aquariums = SyncEntity("aquariums", Aquarium)
volunteers = SyncEntity("volunteers", Volunteer)

ZONES = [zones]
ENCLOSURES = [zones, enclosures]
SPECIES = [species]
ANIMALS = [species, animals]
OBSERVATIONS = [observations]
FIELD_NOTES = [field_notes]
EXHIBITS = [exhibits]
AQUARIUMS = [exhibits, aquariums]
VOLUNTEERS = [volunteers]


class ZonePullView(ReadOnlySyncView):
    entities = ZONES


class ZoneLastWriteWinsView(LastWriteWinsSyncView):
    entities = ZONES


class ZoneConflictView(ConflictDetectionSyncView):
    entities = ZONES


class EnclosurePullView(ReadOnlySyncView):
    """One-to-many: zones and the enclosures in them."""

    entities = ENCLOSURES


class EnclosureLastWriteWinsView(LastWriteWinsSyncView):
    entities = ENCLOSURES


class EnclosureConflictView(ConflictDetectionSyncView):
    entities = ENCLOSURES


class SpeciesPullView(ReadOnlySyncView):
    entities = SPECIES


class SpeciesLastWriteWinsView(LastWriteWinsSyncView):
    entities = SPECIES


class SpeciesConflictView(ConflictDetectionSyncView):
    entities = SPECIES


class AnimalPullView(ReadOnlySyncView):
    """One-to-many: species and the animals of them."""

    entities = ANIMALS


class AnimalLastWriteWinsView(LastWriteWinsSyncView):
    entities = ANIMALS


class AnimalConflictView(ConflictDetectionSyncView):
    entities = ANIMALS


class ObservationPullView(ReadOnlySyncView):
    entities = OBSERVATIONS


class ObservationLastWriteWinsView(LastWriteWinsSyncView):
    entities = OBSERVATIONS


class ObservationConflictView(ConflictDetectionSyncView):
    entities = OBSERVATIONS


class FieldNotePullView(ReadOnlySyncView):
    entities = FIELD_NOTES


class FieldNoteLastWriteWinsView(LastWriteWinsSyncView):
    entities = FIELD_NOTES


class FieldNoteConflictView(ConflictDetectionSyncView):
    entities = FIELD_NOTES


class ExhibitPullView(ReadOnlySyncView):
    entities = EXHIBITS


class ExhibitLastWriteWinsView(LastWriteWinsSyncView):
    entities = EXHIBITS


class ExhibitConflictView(ConflictDetectionSyncView):
    entities = EXHIBITS


class AquariumPullView(ReadOnlySyncView):
    """Multi-table inheritance: the parents and the children."""

    entities = AQUARIUMS


class AquariumLastWriteWinsView(LastWriteWinsSyncView):
    entities = AQUARIUMS


class AquariumConflictView(ConflictDetectionSyncView):
    entities = AQUARIUMS


class VolunteerPullView(ReadOnlySyncView):
    entities = VOLUNTEERS


class VolunteerLastWriteWinsView(LastWriteWinsSyncView):
    entities = VOLUNTEERS


class VolunteerConflictView(ConflictDetectionSyncView):
    entities = VOLUNTEERS
