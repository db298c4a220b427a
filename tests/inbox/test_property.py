"""Random bodies and headers never give a 500 and never store a row."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsx.models import Activity, InboxEntry

from .helpers import meta, remote_sender

KEY_IDS = [
    "https://remote.example/users/bob#main-key",
    "http://127.0.0.1/users/x#k",
    "http://[::1]/k",
    "not a url",
    "",
    "https://remote.example/users/bob",
]

header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
signature_header = st.one_of(
    header_value,
    st.builds(
        lambda key_id, alg, headers, sig: (
            f'keyId="{key_id}",algorithm="{alg}",headers="{headers}",signature="{sig}"'
        ),
        st.sampled_from(KEY_IDS),
        st.sampled_from(["rsa-sha256", "hs2019", "ed25519", "x"]),
        st.sampled_from(["(request-target) host date digest", "date", "", "host"]),
        st.text(alphabet="ABCDEFabcdef0123456789+/=", max_size=80),
    ),
)
json_body = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20,
).map(lambda v: __import__("json").dumps(v).encode())

requests_ = st.fixed_dictionaries(
    {
        "body": st.one_of(st.binary(max_size=400), json_body),
        "content_type": st.sampled_from(
            [
                "application/activity+json",
                "application/json",
                "text/plain",
                "",
                "application/ld+json; x",
            ]
        ),
        "headers": st.dictionaries(
            st.sampled_from(
                [
                    "Signature",
                    "Digest",
                    "Date",
                    "Signature-Input",
                    "Content-Digest",
                    "Authorization",
                ]
            ),
            header_value,
            max_size=5,
        ),
        "signature": st.one_of(st.none(), signature_header),
        "path": st.sampled_from(["/actors/demo/inbox", "/inbox", "/actors/nobody/inbox"]),
    }
)


@pytest.mark.django_db
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests_)
def test_random_requests_never_500_and_never_store(client, demo, request):
    remote_sender("https://remote.example/users/bob")
    headers = dict(request["headers"])
    if request["signature"] is not None:
        headers["Signature"] = request["signature"]
    response = client.generic(
        "POST",
        request["path"],
        request["body"],
        content_type=request["content_type"],
        **meta(headers),
    )
    assert response.status_code in {400, 401, 403, 404, 413, 415}, response.content
    assert response["Content-Type"] == "application/json"
    assert Activity.objects.count() == 0
    assert InboxEntry.objects.count() == 0
