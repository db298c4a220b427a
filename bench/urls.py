from django.urls import include, path

from bench.floor import floor_inbox

urlpatterns = [
    path("floor/inbox", floor_inbox),
    path("", include("fedsx.urls")),
]
