"""JSON-LD for signatures, offline: the contexts peers use are bundled in ``contexts/`` and
nothing else is ever loaded. A document naming another context cannot be processed, which
callers treat as "no usable signature" (``JsonLdUnavailable``), never as an error of ours.

A sender chooses the document, so the work is bounded: URDNA2015 canonicalisation can take
exponential time on crafted graphs of blank nodes, and a document with more of them than
any activity has is refused before it starts.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson
from pyld import jsonld

CONTEXTS = Path(__file__).resolve().parent / "contexts"
# Real activities have a handful (the signature options, tags, attachments).
MAX_BLANK_NODES = 64


class JsonLdUnavailable(Exception):
    """The document cannot be processed offline: an unknown context, bad JSON-LD, too big."""


@cache
def _bundled() -> dict[str, Any]:
    documents = {}
    for path in CONTEXTS.glob("*.jsonld"):
        address = path.stem.replace("_", "/")
        document = orjson.loads(path.read_bytes())
        for scheme in ("https", "http"):
            documents[f"{scheme}://{address}"] = document
    return documents


def load_document(url: str, options: Any = None) -> dict[str, Any]:
    """pyld's document loader: bundled contexts only, never the network."""
    document = _bundled().get(url.rstrip("#"))
    if document is None:
        raise JsonLdUnavailable(f"the context {url[:200]!r} is not bundled")
    return {"contextUrl": None, "documentUrl": url, "document": document}


def _options(**more: Any) -> dict[str, Any]:
    return {"documentLoader": load_document, **more}


def _guarded(operation, *args, **options) -> Any:
    try:
        return operation(*args, _options(**options))
    except JsonLdUnavailable:
        raise
    except (jsonld.JsonLdError, RecursionError, TypeError, ValueError, KeyError) as exc:
        # pyld wraps a loader failure in its own error: find ours again.
        cause = exc
        while cause is not None and not isinstance(cause, JsonLdUnavailable):
            cause = getattr(cause, "cause", None) or cause.__cause__
        reason = str(cause) if cause is not None else type(exc).__name__
        raise JsonLdUnavailable(f"not processable as JSON-LD: {reason}"[:300]) from None


def canonical_nquads(document: dict[str, Any]) -> str:
    """The URDNA2015 canonical N-Quads of ``document``; raises JsonLdUnavailable."""
    nquads = _guarded(jsonld.to_rdf, document, format="application/n-quads")
    labels = {word for word in nquads.split() if word.startswith("_:")}
    if len(labels) > MAX_BLANK_NODES:
        raise JsonLdUnavailable(f"more than {MAX_BLANK_NODES} blank nodes")
    return _guarded(
        jsonld.normalize,
        nquads,
        algorithm="URDNA2015",
        inputFormat="application/n-quads",
        format="application/n-quads",
    )


def compact(document: dict[str, Any], context: Any) -> dict[str, Any]:
    """``document`` as its RDF says it, compacted against ``context``."""
    return _guarded(jsonld.compact, document, context)
