"""DRF renderers for the ActivityPub, WebFinger and NodeInfo media types."""

from rest_framework.renderers import JSONRenderer

from . import media


class ActivityJSONRenderer(JSONRenderer):
    media_type = media.ACTIVITY_JSON
    charset = None


class LDJSONRenderer(JSONRenderer):
    """Matches any ``application/ld+json`` Accept, answers with the AS2 profile named."""

    media_type = "application/ld+json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = media.LD_JSON_AS
        return super().render(data, accepted_media_type, renderer_context)


class JRDRenderer(JSONRenderer):
    media_type = media.JRD_JSON
    charset = None


class NodeInfoRenderer(JSONRenderer):
    media_type = f'application/json; profile="{media.NODEINFO_21_SCHEMA}#"'
    charset = None
