"""RFC 9421 Appendix B / section 4.3 vectors give the README's results under a frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fedsx.httpsig import (
    HttpRequest,
    SignatureError,
    load_public_key,
    parse_signature,
    parse_signatures,
    verify_request,
)

from .vectors import RFC9421, RFC9421_NOW, WINDOW, cases, rfc9421_key, rfc9421_request, text

CASES = cases(RFC9421 / "rfc9421-vectors.json")


def find(request: HttpRequest, label: str):
    return next(p for p in parse_signatures(request) if p.label == label)


def crypto_code(case_id: str) -> str:
    case = CASES[case_id]
    request = rfc9421_request(case)
    parsed = find(request, case["label"])
    try:
        parsed.check_signature(request, rfc9421_key(parsed.key_id), scheme="https")
    except SignatureError as exc:
        return exc.code
    return "ok"


def full_code(case_id: str, now: datetime = RFC9421_NOW) -> str:
    case = CASES[case_id]
    request = rfc9421_request(case)
    parsed = find(request, case["label"])
    try:
        verify_request(request, parsed, rfc9421_key(parsed.key_id), now=now, **WINDOW)
    except SignatureError as exc:
        assert not exc.unexpected
        return exc.code
    return "ok"


# Request vectors whose algorithm we support: the signature itself verifies...
CRYPTO_VALID = ["B.2.1", "B.2.2", "B.2.3", "B.2.6", "B.3", "4.3-sig1", "4.3-proxy_sig"]
CRYPTO_VALID += ["B.4-1", "B.4-2", "B.4-3", "B.4-4"]
# ...and the whole check (policy: @method, target, content-digest with a body, created).
ACCEPTED = ["B.2.3", "4.3-sig1", "4.3-proxy_sig", "B.4-1", "B.4-2", "B.4-3", "B.4-4"]
# Valid signatures that cover too little for an inbox.
UNDER_COVERED = ["B.2.1", "B.2.2", "B.2.6", "B.3"]


@pytest.mark.parametrize("case_id", CRYPTO_VALID)
def test_signature_verifies(case_id):
    assert CASES[case_id]["expected_result"] == "valid"
    assert crypto_code(case_id) == "ok"


@pytest.mark.parametrize("case_id", ACCEPTED)
def test_request_is_accepted(case_id):
    assert full_code(case_id) == "ok"


@pytest.mark.parametrize("case_id", UNDER_COVERED)
def test_valid_but_under_covered_is_refused(case_id):
    assert full_code(case_id) == "headers_not_covered"


@pytest.mark.parametrize("case_id", ["B.4-5", "B.4-6"])
def test_transformations_that_break_the_signature(case_id):
    assert CASES[case_id]["expected_result"] == "invalid"
    assert crypto_code(case_id) == "bad_signature"


def test_b46_is_refused_by_the_full_check():
    assert full_code("B.4-6") == "bad_signature"


def test_b45_is_refused_by_the_full_check():
    # Now a POST without content-digest: refused before the (failing) signature check.
    assert full_code("B.4-5") == "headers_not_covered"


def test_proxy_sig_expires():
    # expires=1618884540 (02:09:00Z): a clock after it refuses the signature as expired.
    assert full_code("4.3-proxy_sig", datetime(2021, 4, 20, 2, 9, 1, tzinfo=UTC)) == (
        "signature_expired"
    )
    # The real clock refuses it too (created is years old).
    assert full_code("4.3-proxy_sig", datetime.now(UTC)) in {
        "date_out_of_window",
        "signature_expired",
    }


def test_old_created_is_out_of_window():
    assert full_code("B.2.3", datetime(2021, 4, 20, 4, 0, tzinfo=UTC)) == "date_out_of_window"
    assert full_code("B.2.3", datetime(2021, 4, 20, 1, 0, tzinfo=UTC)) == "date_out_of_window"


def test_multiple_signatures_expose_all_labels():
    request = rfc9421_request(CASES["4.3-proxy_sig"])
    request = HttpRequest.build(
        request.method,
        request.path,
        [(n, request.headers[n]) for n in request.headers if n != "signature"]
        + [
            (
                "Signature",
                CASES["4.3-proxy_sig"]["message"].split("\nSignature: ")[1].split("\n")[0],
            )
        ],
        request.body,
    )
    found = parse_signatures(request)
    assert [p.label for p in found] == ["sig1", "proxy_sig"]
    assert [p.key_id for p in found] == ["test-key-ecc-p256", "test-key-rsa"]
    assert parse_signature(request).label == "sig1"
    assert found[0].labels == ("sig1", "proxy_sig")
    # sig1 was made over the client's authority, not this proxied one.
    with pytest.raises(SignatureError, match="bad_signature"):
        found[0].check_signature(request, rfc9421_key("test-key-ecc-p256"), scheme="https")
    verify_request(request, found[1], rfc9421_key("test-key-rsa"), now=RFC9421_NOW, **WINDOW)


def test_signature_base_matches_the_rfc():
    for case_id in CRYPTO_VALID:
        case = CASES[case_id]
        request = rfc9421_request(case)
        base = find(request, case["label"]).signature_base(request, "https")
        assert base == case["signature_base"].encode(), case_id


def test_alg_absent_takes_the_algorithm_from_the_key():
    parsed = parse_signature(rfc9421_request(CASES["B.2.3"]))
    assert parsed.algorithm is None  # rsa-pss-sha512 found from the RSA key
    assert parse_signature(rfc9421_request(CASES["B.4-1"])).algorithm is None  # ed25519 key


def test_hmac_is_not_an_activitypub_algorithm():
    # B.2.5: a shared secret is not a public key...
    with pytest.raises(SignatureError, match="bad_key"):
        load_public_key(text(RFC9421 / "test-shared-secret.b64"))
    # ...and a signature that names hmac-sha256 is refused as unsupported.
    case = dict(CASES["B.2.5"])
    case["Signature-Input"] = case["Signature-Input"] + ';alg="hmac-sha256"'
    request = rfc9421_request(case)
    with pytest.raises(SignatureError, match="unsupported_algorithm"):
        parse_signature(request).check_signature(
            request, rfc9421_key("test-key-rsa"), scheme="https"
        )


def test_alg_that_contradicts_the_key_is_refused():
    case = dict(CASES["B.2.6"])  # ed25519 signature
    case["Signature-Input"] = case["Signature-Input"] + ';alg="rsa-v1_5-sha256"'
    request = rfc9421_request(case)
    with pytest.raises(SignatureError, match="bad_signature"):
        parse_signature(request).check_signature(
            request, rfc9421_key("test-key-ed25519"), scheme="https"
        )


def test_response_signature_is_out_of_scope():
    # B.2.4 signs a response (@status); on a request that component is refused, not guessed.
    case = CASES["B.2.4"]
    request = HttpRequest.build(
        "POST",
        "/inbox",
        [
            ("Host", "example.com"),
            ("Signature-Input", case["Signature-Input"]),
            ("Signature", case["Signature"]),
        ],
    )
    with pytest.raises(SignatureError, match="malformed_signature"):
        parse_signature(request)
