"""URLs of the standalone node: a home page, the admin and the plugin's federation endpoints."""

from django.contrib import admin
from django.urls import include, path

from .views import HomeView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("admin/", admin.site.urls),
    path("", include("fedsx.urls")),
]
