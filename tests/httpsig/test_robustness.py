"""Nothing a peer sends makes the signature layer raise anything but SignatureError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsx import httpsig
from fedsx.httpsig import (
    HttpRequest,
    SignatureError,
    load_jwk,
    load_multikey,
    load_public_key,
    parse_signatures,
    verify_digest,
    verify_request,
)

from .test_signing import BODY, NOW, SIGNERS, signed
from .vectors import RFC9421, text

KEYS = [
    load_public_key(SIGNERS["cavage-rsa"][3]),
    load_public_key(text(RFC9421 / "test-key-ed25519.pub.pem")),
    load_public_key(text(RFC9421 / "test-key-ecc-p256.pub.pem")),
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of real signature headers, so that random values get past the first parser.
FRAGMENTS = [
    'keyId="k"',
    'algorithm="',
    "hs2019",
    "rsa-sha256",
    "ed25519",
    "hmac-sha256",
    'headers="',
    "(request-target)",
    "(created)",
    "(expires)",
    " host date digest",
    'signature="',
    "AAAA",
    "created=",
    "expires=",
    "9" * 30,
    "-1",
    "0",
    "1.5",
    '"',
    ",",
    ", ",
    "=",
    ";",
    ":",
    "(",
    ")",
    "sig1=",
    '"@method"',
    '"@target-uri"',
    '"@authority"',
    '"@path"',
    '"@query"',
    '"@query-param";name="a"',
    '"@status"',
    '"content-digest";sf',
    '"x";key="a"',
    '"x";bs',
    '"@method";req',
    ";created=1740830400",
    ';keyid="k"',
    ';alg="rsa-pss-sha512"',
    ";expires=99999999999999999999",
    ":AAAA:",
    "?1",
    "\t",
    " ",
    "\n",
    "é",
    "\x00",
    "SHA-256=",
    "sha-512=:",
    "Signature ",
]
NAMES = [
    "Signature",
    "Signature-Input",
    "Authorization",
    "Digest",
    "Content-Digest",
    "Date",
    "Host",
    "Content-Type",
    "X",
]
values = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join),
)
headers = st.lists(
    st.tuples(st.one_of(st.sampled_from(NAMES), st.text(max_size=10)), values), max_size=8
)
requests = st.builds(
    HttpRequest.build,
    st.one_of(st.sampled_from(["GET", "POST", "post", ""]), st.text(max_size=8)),
    st.one_of(st.sampled_from(["/inbox", "/inbox?a=1&a=2", "/?a=%zz", ""]), st.text(max_size=40)),
    headers,
    st.binary(max_size=64),
)


def exercise(request: HttpRequest) -> None:
    """Run every entry point; only expected refusals may come out."""
    for call in (lambda: verify_digest(request), lambda: _verify_all(request)):
        try:
            call()
        except SignatureError as exc:
            assert not exc.unexpected, exc.__cause__
            assert exc.code in httpsig.errors.CODES


def _verify_all(request: HttpRequest) -> None:
    for parsed in parse_signatures(request):
        for key in KEYS:
            for scheme in ("https", "http"):
                try:
                    verify_request(
                        request, parsed, key, now=NOW, max_skew=300, max_age=3600, scheme=scheme
                    )
                except SignatureError as exc:
                    assert not exc.unexpected, exc.__cause__


@FUZZ
@given(requests)
def test_random_requests(request):
    exercise(request)


@FUZZ
@given(st.sampled_from(sorted(SIGNERS)), st.data())
def test_mutated_signed_requests(name, data):
    fields = signed(name)
    field = data.draw(st.sampled_from(sorted(fields)))
    value = fields[field]
    start = data.draw(st.integers(0, len(value)))
    end = data.draw(st.integers(start, min(len(value), start + 8)))
    fields[field] = value[:start] + data.draw(values) + value[end:]
    request = HttpRequest.build(
        "POST", "/actors/demo/inbox", fields, data.draw(st.one_of(st.just(BODY), st.binary()))
    )
    exercise(request)


@FUZZ
@given(st.one_of(st.text(max_size=300), st.none(), st.integers(), st.binary(max_size=50)))
def test_random_keys(value):
    for load in (load_public_key, load_multikey):
        try:
            load(value)
        except SignatureError as exc:
            assert exc.code == "bad_key"


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["kty", "crv", "n", "e", "x", "y"]),
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(["RSA", "OKP", "EC", "Ed25519", "P-256"]),
            st.integers(),
        ),
    )
)
def test_random_jwks(jwk):
    try:
        load_jwk(jwk)
    except SignatureError as exc:
        assert exc.code == "bad_key"


def test_huge_and_deep_values_are_refused_quickly():
    huge = "a" * 1_000_000
    for name in ("Signature", "Signature-Input", "Digest", "Content-Digest", "Authorization"):
        request = HttpRequest.build("POST", "/inbox", [(name, huge), ("Signature", huge)], b"x")
        exercise(request)
    nested = "sig1=" + "(" * 5000 + ")" * 5000
    exercise(
        HttpRequest.build("POST", "/", [("Signature-Input", nested), ("Signature", "sig1=:AA==:")])
    )


def test_safety_net_turns_an_internal_error_into_a_refusal(monkeypatch):
    def broken(value):
        raise ZeroDivisionError

    monkeypatch.setattr(httpsig.cavage, "parse", broken)
    with pytest.raises(SignatureError) as info:
        parse_signatures(HttpRequest.build("GET", "/", {"Signature": "x"}))
    assert info.value.unexpected and info.value.code == "malformed_signature"


def test_naive_now_is_taken_as_utc():
    request = HttpRequest.build("POST", "/actors/demo/inbox", signed("cavage-rsa"), BODY)
    parsed = parse_signatures(request)[0]
    verify_request(request, parsed, KEYS[0], now=NOW.replace(tzinfo=None), max_skew=0, max_age=0)
