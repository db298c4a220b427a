"""host_of: how fedsx compares hosts, and what its memo keeps."""

import pytest

from fedsx import models
from fedsx.models import host_of


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Example.COM/users/a#main-key", "example.com"),
        ("https://example.com./x", "example.com"),
        ("https://example.com:443/x", "example.com"),
        ("http://example.com:8080/x", "example.com:8080"),
        ("https://[2001:db8::1]:8443/x", "[2001:db8::1]:8443"),
        ("https://example.com:99999/x", ""),
        ("not a url", ""),
    ],
)
def test_host_of(url, host):
    assert host_of(url) == host


def test_long_urls_chosen_by_senders_are_not_memoised():
    models._cached_host_of.cache_clear()
    long_key_id = "https://example.com/" + "k" * 15_000 + "#main-key"
    assert host_of(long_key_id) == "example.com"
    assert models._cached_host_of.cache_info().currsize == 0
    assert host_of("https://example.com/users/a#main-key") == "example.com"
    assert models._cached_host_of.cache_info().currsize == 1
