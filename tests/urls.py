from django.contrib import admin
from django.urls import include, path, re_path

from offline_sync.rest_framework.errors import not_found_view
from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("sync/items/", views.ItemPullView.as_view()),
    path("sync/notes/", views.NotePullView.as_view()),
    path("sync/items-notes/", views.ItemsAndNotesPullView.as_view()),
    path("sync/items-lww/", views.ItemPushView.as_view()),
    path("sync/notes-lww/", views.NotePushView.as_view()),
    path("sync/items-cd/", views.ItemConflictView.as_view()),
    path("sync/labels/", views.LabelPushView.as_view()),
    path("sync/notes-all/", views.StaffNotePullView.as_view()),
    path("sync/items-narrowed/", views.NarrowedItemPullView.as_view()),
    path("sync/notes-cd/", views.NoteConflictView.as_view()),
    path("sync/documents/", views.DocumentPushView.as_view()),
    path("sync/folder-tasks/", views.FolderTasksView.as_view()),
    path("sync/folder-tasks-cd/", views.FolderTasksConflictView.as_view()),
    path("sync/items-notes-lww/", views.ItemsNotesPushView.as_view()),
    path("sync/conflicts/", include("offline_sync.rest_framework.urls")),
    path("sync/zoo/", include("tests.zoo.urls")),
    re_path(r"^sync/", not_found_view),
]
