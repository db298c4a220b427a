"""draft-cavage-12 Appendix C and Mastodon's own spec vectors give the README's results."""

from __future__ import annotations

import base64
from datetime import UTC, timedelta

import pytest

from fedsx.httpsig import HttpRequest, SignatureError, load_public_key, parse_signature
from fedsx.httpsig import verify_request as _verify_request
from fedsx.httpsig.signature import parse_http_date

from .vectors import (
    CAVAGE,
    CAVAGE_NOW,
    MASTODON,
    MASTODON_NOW,
    WINDOW,
    cases,
    cavage_request,
    mastodon_request,
    text,
)

CAVAGE_CASES = cases(CAVAGE / "cavage-12-vectors.json")
MASTODON_CASES = cases(MASTODON / "mastodon-signature-vectors.json")
TEST_KEY = load_public_key(text(CAVAGE / "test-public.pem"))
BOB = load_public_key(text(MASTODON / "bob-public.pem"))


def verify(request: HttpRequest, key, now) -> None:
    _verify_request(request, parse_signature(request), key, now=now, **WINDOW)


def crypto_code(request: HttpRequest, key) -> str:
    """The bare cryptographic check: "ok" or the refusal code."""
    try:
        parse_signature(request).check_signature(request, key, scheme="https")
    except SignatureError as exc:
        return exc.code
    return "ok"


def refusal(request: HttpRequest, key, now) -> str:
    with pytest.raises(SignatureError) as info:
        verify(request, key, now)
    assert not info.value.unexpected
    return info.value.code


# --- draft-cavage-12 appendix C -------------------------------------------------------------


@pytest.mark.parametrize("header", ["Signature", "Authorization"])
def test_c1_default_headers_mean_date_and_verify(header):
    request = cavage_request(CAVAGE_CASES["C.1"], header=header)
    parsed = parse_signature(request)
    assert (parsed.scheme, parsed.key_id, parsed.covered) == ("cavage", "Test", ("date",))
    assert crypto_code(request, TEST_KEY) == "ok"
    # Cryptographically valid, but it signs neither the target nor the host: refused.
    assert refusal(request, TEST_KEY, CAVAGE_NOW) == "headers_not_covered"


def test_c2_basic_verifies_but_a_post_must_sign_its_digest():
    request = cavage_request(CAVAGE_CASES["C.2"])
    assert parse_signature(request).covered == ("(request-target)", "host", "date")
    assert crypto_code(request, TEST_KEY) == "ok"
    assert refusal(request, TEST_KEY, CAVAGE_NOW) == "headers_not_covered"


def test_c3_as_printed_is_rejected():
    request = cavage_request(CAVAGE_CASES["C.3"])
    parsed = parse_signature(request)
    assert parsed.created is not None and parsed.expires is not None
    # The signature was made without (created)/(expires): honouring headers= it fails.
    assert crypto_code(request, TEST_KEY) == "bad_signature"
    # Under the draft's Date its created time (June 2014) is months in the future.
    assert refusal(request, TEST_KEY, CAVAGE_NOW) == "date_out_of_window"
    # With a window wide enough for both Date and created, it fails on the signature...
    wide = {"max_skew": 300, "max_age": 10**8}
    with pytest.raises(SignatureError, match="bad_signature"):
        _verify_request(request, parsed, TEST_KEY, now=parsed.created, **wide)
    # ...and after its expires time it is expired.
    after = parsed.expires + timedelta(seconds=1)
    with pytest.raises(SignatureError, match="signature_expired"):
        _verify_request(request, parsed, TEST_KEY, now=after, **wide)


def test_c3_draft10_form_is_fully_valid():
    request = cavage_request(CAVAGE_CASES["C.3-draft10"])
    verify(request, TEST_KEY, CAVAGE_NOW)  # covers target, host, date, digest: accepted


def test_c3_draft10_outside_the_window_is_refused():
    request = cavage_request(CAVAGE_CASES["C.3-draft10"])
    assert refusal(request, TEST_KEY, MASTODON_NOW) == "date_out_of_window"


def test_cavage_vectors_reproduce_by_resigning():
    # PKCS#1 v1.5 is deterministic: signing the recorded strings gives the recorded values.
    from fedsx.httpsig.algorithms import RSA_V1_5_SHA256
    from fedsx.httpsig.keys import load_private_key

    private = load_private_key(text(CAVAGE / "test-private-pkcs1.pem"))
    for case_id in ("C.1", "C.2", "C.3-draft10"):
        case = CAVAGE_CASES[case_id]
        request = cavage_request(case)
        signing_string = parse_signature(request).signing_string(request, request.path)
        assert signing_string == case["signing_string"].encode()
        assert (
            base64.b64encode(RSA_V1_5_SHA256.sign(private, signing_string)).decode()
            == (case["signature_b64"])
        )


# --- Mastodon's signature_verification_spec.rb ----------------------------------------------

ACCEPTED = ["get-valid", "get-query-valid", "get-query-not-signed-quirk", "post-valid"]
REFUSED = {
    "get-query-mismatch": "bad_signature",
    "get-path-mismatch": "bad_signature",
    # A body-less POST must still sign a digest; the signature (over GET) fails anyway.
    "method-mismatch": "headers_not_covered",
    "unparsable-date": "invalid_date",
    "date-too-old": "date_out_of_window",
    "post-digest-not-signed": "headers_not_covered",
    "post-tampered-body": "digest_mismatch",
    "post-tampered-path": "bad_signature",
}


def test_every_mastodon_case_is_covered_here():
    assert set(MASTODON_CASES) == {*ACCEPTED, *REFUSED, "unknown-key-404"}


@pytest.mark.parametrize("case_id", ACCEPTED)
def test_mastodon_accepts(case_id):
    request = mastodon_request(MASTODON_CASES[case_id])
    parsed = parse_signature(request)
    assert parsed.key_id == "https://remote.domain/users/bob#main-key"
    verify(request, BOB, MASTODON_NOW)


@pytest.mark.parametrize(("case_id", "code"), REFUSED.items())
def test_mastodon_refuses_for_the_stated_reason(case_id, code):
    request = mastodon_request(MASTODON_CASES[case_id])
    assert refusal(request, BOB, MASTODON_NOW) == code


def test_mastodon_method_mismatch_fails_cryptographically_too():
    request = mastodon_request(MASTODON_CASES["method-mismatch"])
    assert crypto_code(request, BOB) == "bad_signature"


def test_mastodon_policy_refusals_are_crypto_valid():
    # The README: date and digest refusals are policy; the RSA signatures themselves verify.
    for case_id in (
        "unparsable-date",
        "date-too-old",
        "post-digest-not-signed",
        "post-tampered-body",
    ):
        assert crypto_code(mastodon_request(MASTODON_CASES[case_id]), BOB) == "ok", case_id


def test_mastodon_unknown_key_names_another_key():
    # The 404 is the key fetcher's business; here: the key id is alice's, and no other
    # key (say, the caller's cached key for someone else) makes it verify.
    request = mastodon_request(MASTODON_CASES["unknown-key-404"])
    assert parse_signature(request).key_id == "https://remote.domain/users/alice#main-key"
    assert refusal(request, TEST_KEY, MASTODON_NOW) == "bad_signature"


def test_quirk_is_only_the_query_dropped():
    # The path without query verifies; a different path with the same query does not.
    case = dict(MASTODON_CASES["get-query-not-signed-quirk"])
    case["path"] = "/activitypub/other?foo=42"
    assert refusal(mastodon_request(case), BOB, MASTODON_NOW) == "bad_signature"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 05 Jan 2014 21:31:40 GMT", "2014-01-05T21:31:40+00:00"),  # IMF-fixdate
        ("Sunday, 05-Jan-14 21:31:40 GMT", "2014-01-05T21:31:40+00:00"),  # RFC 850
        ("Sun, 05 Jan 2014 22:31:40 +0100", "2014-01-05T21:31:40+00:00"),
    ],
)
def test_http_dates(value, expected):
    assert parse_http_date(value).astimezone(UTC).isoformat() == expected


@pytest.mark.parametrize(
    "value", ["wrong date", "Sun, 31 Feb 2014 21:31:40 GMT", "Sun, 05 Jan 2014 25:31:40 GMT", ""]
)
def test_unparsable_dates(value):
    with pytest.raises(SignatureError, match="invalid_date"):
        parse_http_date(value)
