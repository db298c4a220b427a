import base64
import hashlib
import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsx.cid import CanonicalizationError, activity_cid, canonical_json, json_cid


def test_cid_matches_the_byte_layout_computed_by_hand():
    value = {"type": "Follow", "actor": "https://a.example/u/1", "n": 1.0, "é": "ü"}
    # RFC 8785: keys sorted by UTF-16 code units, no whitespace, 1.0 written as 1, UTF-8 kept.
    expected_bytes = '{"actor":"https://a.example/u/1","n":1,"type":"Follow","é":"ü"}'.encode()
    assert canonical_json(value) == expected_bytes
    # CIDv1 = varint(1) varint(0x0200 json) varint(0x12 sha2-256) varint(32) digest
    raw = bytes([0x01, 0x80, 0x04, 0x12, 0x20]) + hashlib.sha256(expected_bytes).digest()
    expected = "b" + base64.b32encode(raw).decode().rstrip("=").lower()
    assert activity_cid(value) == expected
    assert expected.startswith("bagaaiera")  # the well-known prefix of json/sha2-256 CIDv1s


def test_cid_ignores_key_order_and_whitespace():
    a = json.loads('{"a": 1, "b": [1, 2, {"y": 2, "x": 1}]}')
    b = json.loads('{"b":[1,2,{"x":1,"y":2}],"a":1}')
    assert json_cid(a) == json_cid(b)


def test_cid_changes_with_content():
    assert json_cid({"a": 1}) != json_cid({"a": 2})
    assert json_cid([1, 2]) != json_cid([2, 1])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_fast_path_agrees_with_the_rfc8785_library(value):
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        return  # lone surrogates: no canonical form, checked below
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "value", [{"n": 1.5}, {"n": 1e21}, {"n": 2**53 + 1}, {"\U0001f600": 1, "\ufb01": 2}]
)
def test_values_outside_the_fast_path_go_through_rfc8785(value):
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


def test_lone_surrogate_has_no_canonical_form():
    with pytest.raises(CanonicalizationError):
        canonical_json({"a": "\ud800"})
