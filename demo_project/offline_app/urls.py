from django.urls import path

from .views import OfflineAppView, ServiceWorkerView

urlpatterns = [
    path("", OfflineAppView.as_view(), name="offline-app"),
    path("sw.js", ServiceWorkerView.as_view(), name="offline-app-service-worker"),
]
