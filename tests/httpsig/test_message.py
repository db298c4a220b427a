"""HttpRequest and Headers: what the signature layer reads from a request."""

from __future__ import annotations

from fedsx.httpsig import Headers, HttpRequest


def test_headers_are_case_insensitive_and_join_repeated_lines():
    headers = Headers([("Accept", " application/json "), ("accept", "*/*"), ("HOST", "a.example")])
    assert headers["ACCEPT"] == "application/json, */*"
    assert headers.lines("Accept") == ("application/json", "*/*")
    assert "host" in headers and headers["Host"] == "a.example"
    assert "missing" not in headers and headers.get("missing") is None
    assert sorted(headers) == ["accept", "host"]


def test_build_from_a_mapping_and_bytes():
    request = HttpRequest.build("POST", "/inbox?a=1", {b"Host": b"x.example\xe9"}, None)
    assert request.headers["host"] == "x.example\xe9"  # Latin-1, byte for byte
    assert (request.body, request.path_only, request.query) == (b"", "/inbox", "a=1")
    assert HttpRequest.build("GET", "/inbox").query is None
    assert HttpRequest.build("GET", "/inbox?").query == ""


def test_from_wsgi_uses_the_raw_target():
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/actors/d%C3%A9mo/inbox?x=%20",
        "PATH_INFO": "/actors/dÃ©mo/inbox",
        "QUERY_STRING": "x=%20",
        "HTTP_HOST": "fedsx.example",
        "HTTP_SIGNATURE": 'keyId="k"',
        "CONTENT_TYPE": "application/activity+json",
        "CONTENT_LENGTH": "2",
        "wsgi.input": object(),
    }
    request = HttpRequest.from_wsgi(environ, b"{}")
    assert request.path == "/actors/d%C3%A9mo/inbox?x=%20"
    assert request.headers["content-type"] == "application/activity+json"
    assert request.headers["signature"] == 'keyId="k"'
    assert request.headers["host"] == "fedsx.example"


def test_from_wsgi_rebuilds_target_and_host_without_them():
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/actors/dÃ©mo/inbox",  # WSGI: the decoded bytes as Latin-1
        "QUERY_STRING": "x=%20",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    request = HttpRequest.from_wsgi(environ, b"")
    assert request.path == "/actors/d%C3%A9mo/inbox?x=%20"
    assert request.headers["host"] == "testserver"
    environ["SERVER_PORT"] = "8000"
    assert HttpRequest.from_wsgi(environ, b"").headers["host"] == "testserver:8000"
    environ["RAW_URI"] = "http://testserver:8000/abs?q=1"  # absolute-form target
    assert HttpRequest.from_wsgi(environ, b"").path == "/abs?q=1"


def test_body_digest_is_memoised():
    request = HttpRequest.build("POST", "/", (), b"abc")
    assert request.body_digest("sha256") is request.body_digest("sha256")
