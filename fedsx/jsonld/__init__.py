"""JSON-LD for signatures, offline: the contexts peers use are bundled in ``contexts/`` and
nothing else is ever loaded. A document naming another context cannot be processed, which
callers treat as "no usable signature" (``JsonLdUnavailable``), never as an error of ours.

A sender chooses the document, so the work is bounded: URDNA2015 canonicalisation can take
factorial time on crafted graphs of blank nodes, so a document with more of them than any
activity has is refused before it starts, explicit blank node ids (the only way to link
blank nodes into such graphs; no real activity has them) are refused, and the
canonicalisation itself stops after ``MAX_CANONICALISATION_STEPS``.

What the RDF silently drops must not reach the signed data, which a compaction gives: terms
no context defines (under ActivityStreams' ``"@vocab": "_:"`` they become blank-node
predicates, which RDF has not) are removed first, and nodes with a relative IRI (which RDF
drops with all they say) are refused.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from pyld import jsonld

from ..vocab import as_list

CONTEXTS = Path(__file__).resolve().parent / "contexts"
# Real activities have a handful (the signature options, tags, attachments).
MAX_BLANK_NODES = 64
# Identifier checks in the canonicalisation: real activities need a few dozen (27 at most
# among the fixtures); crafted cliques of blank nodes need n! (eight linked nodes: millions).
MAX_CANONICALISATION_STEPS = 2_000
ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S*")
NQUADS = "application/n-quads"


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
    nquads = _guarded(jsonld.to_rdf, signable(document), format=NQUADS)
    labels = {word for word in nquads.split() if word.startswith("_:")}
    if len(labels) > MAX_BLANK_NODES:
        raise JsonLdUnavailable(f"more than {MAX_BLANK_NODES} blank nodes")
    return _guarded(_canonicalise, nquads)


def signable(document: dict[str, Any]) -> list[Any]:
    """``document`` expanded, without the terms RDF drops; raises JsonLdUnavailable when it
    holds an explicit blank node id or a relative IRI (see the module's docstring)."""
    expanded = _guarded(jsonld.expand, document)
    stack = [expanded]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for key in [key for key in node if key.startswith("_:")]:
            del node[key]  # an undefined term: not in the RDF, so not signed
        for key, value in node.items():
            if key in ("@id", "@type"):
                for iri in as_list(value):
                    # An undefined type is a blank node: the RDF keeps it (relabelled).
                    typed = key == "@type" and (iri == "@json" or str(iri)[:2] == "_:")
                    if not typed and not _is_absolute_iri(iri):
                        raise JsonLdUnavailable(f"{key} {str(iri)[:100]!r} is not an absolute IRI")
            elif key != "@value":  # a literal (or @json) is data, not structure
                if not key.startswith("@") and not _is_absolute_iri(key):
                    raise JsonLdUnavailable(f"the term {key[:100]!r} is not an absolute IRI")
                stack.append(value)
    return expanded


def _is_absolute_iri(value: Any) -> bool:
    return (
        isinstance(value, str)
        and not value.startswith("_:")
        and ABSOLUTE_IRI.fullmatch(value) is not None
    )


class _Budget(jsonld.IdentifierIssuer):
    """The canonical issuer, counting the identifier checks URDNA2015 makes: one per
    related blank node per permutation tried, so it measures the algorithm's work."""

    def __init__(self) -> None:
        super().__init__("_:c14n")
        self.steps = MAX_CANONICALISATION_STEPS

    def has_id(self, old: str) -> bool:
        self.steps -= 1
        if self.steps < 0:
            raise JsonLdUnavailable("the document's blank nodes take too long to canonicalise")
        return super().has_id(old)


class _BoundedURDNA2015(jsonld.URDNA2015):
    def __init__(self) -> None:
        super().__init__()
        self.canonical_issuer = _Budget()


def _canonicalise(nquads: str, options: Any) -> str:
    dataset = jsonld.JsonLdProcessor.parse_nquads(nquads)
    return _BoundedURDNA2015().main(dataset, {"format": NQUADS})


def compact(document: dict[str, Any], context: Any) -> dict[str, Any]:
    """``document`` as its RDF says it, compacted against ``context``."""
    return _guarded(jsonld.compact, signable(document), context)
