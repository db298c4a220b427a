"""Loading the signature test vectors in tests/fixtures/signatures (see its README.txt)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from fedsx.httpsig import HttpRequest, load_public_key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "signatures"
CAVAGE = FIXTURES / "cavage-12"
MASTODON = FIXTURES / "mastodon-signature-spec"
RFC9421 = FIXTURES / "rfc9421"

# The frozen clocks the README prescribes.
CAVAGE_NOW = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)
MASTODON_NOW = datetime(2023, 12, 20, 10, 0, 0, tzinfo=UTC)
RFC9421_NOW = datetime(2021, 4, 20, 2, 8, 30, tzinfo=UTC)
# Window settings as the inbox uses them by default.
WINDOW = {"max_skew": 300, "max_age": 3600}


@cache
def load_json(path: Path) -> dict:
    return json.loads(path.read_text())


def text(path: Path) -> str:
    return path.read_text()


def cases(path: Path) -> dict[str, dict]:
    return {case["id"]: case for case in load_json(path)["cases"]}


def cavage_request(case: dict, *, header: str = "Signature") -> HttpRequest:
    data = load_json(CAVAGE / "cavage-12-vectors.json")["request"]
    value = case["Signature"] if header == "Signature" else case["Authorization"]
    headers = [*map(tuple, data["headers"]), (header, value)]
    return HttpRequest.build(data["method"], data["path"], headers, data["body"].encode())


def mastodon_request(case: dict) -> HttpRequest:
    body = (case["body"] or "").encode()
    return HttpRequest.build(case["method"], case["path"], case["headers"], body)


def rfc9421_request(case: dict) -> HttpRequest:
    """The case's message with exactly its own Signature-Input/Signature fields."""
    head, _, body = case["message"].partition("\n\n")
    request_line, *lines = head.split("\n")
    method, target, _ = request_line.split(" ")
    headers = [tuple(line.split(": ", 1)) for line in lines]
    headers = [h for h in headers if h[0].lower() not in ("signature-input", "signature")]
    headers += [("Signature-Input", case["Signature-Input"]), ("Signature", case["Signature"])]
    return HttpRequest.build(method, target, headers, body.lstrip("\n").encode())


def rfc9421_key(key_id: str):
    files = load_json(RFC9421 / "rfc9421-vectors.json")["key_files"][key_id]
    return load_public_key(text(RFC9421 / files["public"]))


def rfc9421_private_pem(key_id: str) -> str:
    files = load_json(RFC9421 / "rfc9421-vectors.json")["key_files"][key_id]
    return text(RFC9421 / files["private"])
