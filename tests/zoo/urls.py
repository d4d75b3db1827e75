"""``sync/zoo/<group>/`` pulls, ``<group>-lww/`` last write wins, ``<group>-cd/`` conflict detection."""

from django.urls import path

from . import views

GROUPS = {
    "zones": (views.ZonePullView, views.ZoneLastWriteWinsView, views.ZoneConflictView),
    "enclosures": (views.EnclosurePullView, views.EnclosureLastWriteWinsView, views.EnclosureConflictView),
    "species": (views.SpeciesPullView, views.SpeciesLastWriteWinsView, views.SpeciesConflictView),
    "animals": (views.AnimalPullView, views.AnimalLastWriteWinsView, views.AnimalConflictView),
    "observations": (views.ObservationPullView, views.ObservationLastWriteWinsView, views.ObservationConflictView),
    "field-notes": (views.FieldNotePullView, views.FieldNoteLastWriteWinsView, views.FieldNoteConflictView),
    "exhibits": (views.ExhibitPullView, views.ExhibitLastWriteWinsView, views.ExhibitConflictView),
    "aquariums": (views.AquariumPullView, views.AquariumLastWriteWinsView, views.AquariumConflictView),
    "volunteers": (views.VolunteerPullView, views.VolunteerLastWriteWinsView, views.VolunteerConflictView),
}

urlpatterns = [
    route
    for group, (pull, lww, cd) in GROUPS.items()
    for route in (
        path(f"{group}/", pull.as_view()),
        path(f"{group}-lww/", lww.as_view()),
        path(f"{group}-cd/", cd.as_view()),
    )
]
