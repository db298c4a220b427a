"""DRF parsers for the ActivityPub media types (bodies are JSON in all of them)."""

from rest_framework.parsers import JSONParser

from . import media


class ActivityJSONParser(JSONParser):
    media_type = media.ACTIVITY_JSON


class LDJSONParser(JSONParser):
    media_type = "application/ld+json"
