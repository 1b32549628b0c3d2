"""RFC 9421 component values, following the RFC's Section 2 examples."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from bridge.activitypub.cavage import CavageSignature, cavage_signing_string
from bridge.activitypub.message_signatures import Component, component_value
from bridge.activitypub.signed_requests import SignedRequest
from bridge.activitypub.structured_fields import Token
from bridge.errors import MalformedSignature


def request(path: str, *headers: tuple[str, str], method: str = "POST") -> SignedRequest:
    return SignedRequest(
        method=method,
        path=path,
        headers=CIMultiDict([("Host", "www.example.com"), *headers]),
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("@method", "POST"),
        ("@target-uri", "https://www.example.com/path?param=value"),
        ("@authority", "www.example.com"),
        ("@scheme", "https"),
        ("@request-target", "/path?param=value"),
        ("@path", "/path"),
        ("@query", "?param=value"),
    ],
)
def test_derived_components(name: str, value: str) -> None:
    assert component_value(request("/path?param=value"), Component(name)) == value


def test_derived_components_normalise() -> None:
    bare = SignedRequest("get", "", {"Host": "WWW.Example.COM:443"})
    assert component_value(bare, Component("@method")) == "get"
    assert component_value(bare, Component("@authority")) == "www.example.com"
    assert component_value(bare, Component("@path")) == "/"
    assert component_value(bare, Component("@query")) == "?"
    plain = SignedRequest("GET", "/a", {"Host": "h.example:80"}, scheme="HTTP")
    assert component_value(plain, Component("@target-uri")) == "http://h.example/a"


def test_absolute_form_target_from_a_proxy() -> None:
    proxied = request("https://www.example.com/users/a/inbox?x=1")
    assert component_value(proxied, Component("@target-uri")) == (
        "https://www.example.com/users/a/inbox?x=1"
    )
    assert component_value(proxied, Component("@path")) == "/users/a/inbox"
    signature = CavageSignature("k", "hs2019", ("(request-target)",), b"")
    assert cavage_signing_string(proxied, signature) == "(request-target): post /users/a/inbox?x=1"


@pytest.mark.parametrize(
    ("name", "value"),
    [("baz", "batman"), ("qux", ""), ("param", "value")],
)
def test_query_params(name: str, value: str) -> None:
    query = request("/path?param=value&foo=bar&baz=batman&qux=", method="GET")
    assert component_value(query, Component("@query-param", {"name": name})) == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("var", "this%20is%20a%20big%0Amultiline%20value"),
        ("bar", "with%20plus%20whitespace"),
        ("fa%C3%A7ade%22%3A%20", "something"),
    ],
)
def test_query_params_are_form_decoded_and_re_encoded(name: str, value: str) -> None:
    query = request(
        "/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace"
        "&fa%C3%A7ade%22%3A%20=something",
        method="GET",
    )
    assert component_value(query, Component("@query-param", {"name": name})) == value


@pytest.mark.parametrize(
    ("component", "problem"),
    [
        (Component("@query-param", {"name": "missing"}), "occurs 0 times"),
        (Component("@query-param", {"name": "a"}), "occurs 2 times"),
        (Component("@query-param", {"name": Token("a")}), "needs a name"),
        (Component("@query-param"), "needs a name"),
        (Component("@status"), "does not apply"),
        (Component("@nonsense"), "does not apply"),
        (Component("@method", {"req": True}), "unsupported parameters"),
        (Component("x-absent"), "not in the request"),
        (Component("host", {"tr": True}), "unsupported parameters"),
        (Component("host", {"bs": True, "sf": True}), "cannot be combined"),
        (Component("host", {"sf": True}), "structured type of field host is unknown"),
        (Component("content-digest", {"key": "sha-512"}), "has no member"),
        (Component("content-digest", {"key": 1}), "not a string"),
        (Component("x-broken", {"key": "a"}), "x-broken: unterminated inner list"),
        (Component("x-newline"), "line break"),
    ],
)
def test_component_errors(component: Component, problem: str) -> None:
    subject = request(
        "/p?a=1&a=2",
        ("Content-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"),
        ("X-Broken", "a=("),
        ("X-Newline", "one\ntwo"),
    )
    with pytest.raises(MalformedSignature, match=problem):
        component_value(subject, component)


def test_field_values_are_trimmed_unfolded_and_combined() -> None:
    fields = request(
        "/",
        ("Cache-Control", "max-age=60"),
        ("Cache-Control", "   must-revalidate"),
        ("X-Obs-Fold-Header", "Obsolete\r\n    line folding."),
        ("X-Empty-Header", ""),
        ("X-OWS-Header", "   Leading and trailing whitespace.   "),
    )
    assert component_value(fields, Component("cache-control")) == "max-age=60, must-revalidate"
    assert component_value(fields, Component("x-obs-fold-header")) == "Obsolete line folding."
    assert component_value(fields, Component("x-empty-header")) == ""
    assert component_value(fields, Component("x-ows-header")) == (
        "Leading and trailing whitespace."
    )


def test_structured_field_parameters() -> None:
    fields = request(
        "/",
        ("Example-Dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c)"),
        ("Content-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,   unixsum=1"),
        ("Example-Header", "value, with, lots"),
        ("Example-Header", "of, commas"),
    )
    assert component_value(fields, Component("example-dict", {"key": "a"})) == "1"
    assert component_value(fields, Component("example-dict", {"key": "b"})) == "2;x=1;y=2"
    assert component_value(fields, Component("example-dict", {"key": "c"})) == "(a b c)"
    assert component_value(fields, Component("content-digest", {"sf": True})) == (
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, unixsum=1"
    )
    assert component_value(fields, Component("example-header", {"bs": True})) == (
        ":dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:"
    )
    assert component_value(fields, Component("example-header")) == ("value, with, lots, of, commas")
