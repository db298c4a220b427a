"""URLs of the standalone node: the admin plus the plugin's federation endpoints."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("fedsx.urls")),
]
