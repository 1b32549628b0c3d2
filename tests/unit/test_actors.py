"""Actor documents built purely from a blog, its public key and the URL builder."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.activitypub.actors import (
    build_actor,
    build_instance_actor,
    display_name,
    icon,
    summary_html,
    text_to_html,
)
from bridge.activitypub.jsonld import AS_NAMESPACE, SECURITY_CONTEXT
from bridge.activitypub.keys import generate_keypair
from bridge.activitypub.urls import Urls
from bridge.entries import FeedMeta
from bridge.store.base import Blog, BlogSettings, FeedState, KeyPair

URLS = Urls("https://bridge.example")
CREATED = datetime(2026, 11, 28, 12, 30, 15, 123456, tzinfo=UTC)
TALKABOUT_META = FeedMeta(
    title="talkabout",
    description="Kommunikation, PR und Social Media",
    home_url="http://www.talkabout.de",
    icon_url="http://www.talkabout.de/wp-content/uploads/talkabout-logo.png",
    language="de",
    self_url="http://www.talkabout.de/feed/",
)


@pytest.fixture(scope="module")
def keypair() -> KeyPair:
    return generate_keypair("talkabout", CREATED)


def make_blog(meta: FeedMeta = TALKABOUT_META, **settings: Any) -> Blog:
    return Blog(
        id=1,
        handle="talkabout",
        feed_url="http://www.talkabout.de/feed/",
        settings=BlogSettings(**settings),
        from_config=True,
        created_at=CREATED,
        meta=meta,
        feed=FeedState(),
    )


def test_actor_document_fields(keypair: KeyPair) -> None:
    actor = build_actor(make_blog(), keypair.public_pem, URLS)
    base = "https://bridge.example/users/talkabout"
    assert next(iter(actor)) == "@context"
    assert actor["id"] == base
    assert actor["type"] == "Service"
    assert actor["preferredUsername"] == "talkabout"
    assert actor["name"] == "talkabout"
    assert actor["url"] == "https://bridge.example/@talkabout"
    assert actor["inbox"] == f"{base}/inbox"
    assert actor["outbox"] == f"{base}/outbox"
    assert actor["followers"] == f"{base}/followers"
    assert actor["following"] == f"{base}/following"
    assert actor["featured"] == f"{base}/featured"
    assert actor["endpoints"] == {"sharedInbox": "https://bridge.example/inbox"}
    assert actor["manuallyApprovesFollowers"] is False
    assert actor["discoverable"] is True
    assert actor["indexable"] is True
    assert actor["published"] == "2026-11-28T12:30:15Z"
    assert actor["icon"] == {
        "type": "Image",
        "url": "http://www.talkabout.de/wp-content/uploads/talkabout-logo.png",
        "mediaType": "image/png",
    }
    assert "alsoKnownAs" not in actor
    assert actor["attachment"][0]["type"] == "PropertyValue"
    assert actor["attachment"][0]["name"] == "Blog"
    assert actor["attachment"][0]["value"] == (
        '<a href="http://www.talkabout.de" target="_blank" rel="nofollow noopener me" '
        'translate="no">www.talkabout.de</a>'
    )
    assert actor["attachment"][1]["name"] == "Feed"
    assert 'href="http://www.talkabout.de/feed/"' in actor["attachment"][1]["value"]


def test_context_declares_security_and_mastodon_terms(keypair: KeyPair) -> None:
    context = build_actor(make_blog(), keypair.public_pem, URLS)["@context"]
    assert context[0] == AS_NAMESPACE
    assert SECURITY_CONTEXT in context
    extensions = next(item for item in context if isinstance(item, dict))
    for term in ("manuallyApprovesFollowers", "featured", "discoverable", "indexable"):
        assert term in extensions
    assert {"PropertyValue", "value"} <= set(extensions)


def test_public_key_matches_the_private_key(keypair: KeyPair) -> None:
    actor = build_actor(make_blog(), keypair.public_pem, URLS)
    key = actor["publicKey"]
    assert key["id"] == "https://bridge.example/users/talkabout#main-key"
    assert key["owner"] == actor["id"]
    assert key["publicKeyPem"] == keypair.public_pem
    public = serialization.load_pem_public_key(key["publicKeyPem"].encode())
    private = serialization.load_pem_private_key(keypair.private_pem.encode(), None)
    assert isinstance(public, rsa.RSAPublicKey)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert public.public_numbers() == private.public_key().public_numbers()


def test_summary_is_the_description_plus_the_bridge_line() -> None:
    summary = summary_html(make_blog())
    assert summary.startswith("<p>Kommunikation, PR und Social Media</p>")
    assert "bridged automatically" in summary
    assert 'href="http://www.talkabout.de/feed/"' in summary


def test_settings_override_name_summary_and_approval(keypair: KeyPair) -> None:
    blog = make_blog(
        display_name="  Talk   About  ",
        summary="Mirkos Blog <b>über</b> PR & Dialog\nzweite Zeile\n\nAbsatz",
        manually_approves_followers=True,
    )
    actor = build_actor(blog, keypair.public_pem, URLS)
    assert actor["name"] == "Talk About"
    assert actor["summary"].startswith(
        "<p>Mirkos Blog &lt;b&gt;über&lt;/b&gt; PR &amp; Dialog<br>zweite Zeile</p><p>Absatz</p>"
    )
    assert "Kommunikation" not in actor["summary"]
    assert actor["manuallyApprovesFollowers"] is True


def test_missing_feed_meta_falls_back(keypair: KeyPair) -> None:
    actor = build_actor(make_blog(FeedMeta()), keypair.public_pem, URLS)
    assert actor["name"] == "talkabout"
    assert "icon" not in actor
    assert [field["name"] for field in actor["attachment"]] == ["Feed"]
    assert actor["summary"] == (
        '<p>Bridged automatically from the feed <a href="http://www.talkabout.de/feed/" '
        'target="_blank" rel="nofollow noopener me" translate="no">www.talkabout.de/feed</a>.</p>'
    )


def test_hostile_meta_is_escaped_and_bad_urls_dropped(keypair: KeyPair) -> None:
    meta = FeedMeta(
        title="<script>alert(1)</script>",
        description='"><img src=x onerror=alert(1)>',
        home_url="javascript:alert(1)",
        icon_url="data:image/png;base64,AAAA",
    )
    actor = build_actor(make_blog(meta), keypair.public_pem, URLS)
    # The name is plain text in ActivityStreams: receivers escape it, so it stays verbatim.
    assert actor["name"] == "<script>alert(1)</script>"
    assert "<img" not in actor["summary"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in actor["summary"]
    assert "javascript:" not in str(actor)
    assert "icon" not in actor


def test_display_name_ignores_blank_values() -> None:
    assert display_name(make_blog(FeedMeta(title="   "), display_name=" ")) == "talkabout"


def test_icon_media_types() -> None:
    assert icon("https://x.example/a/logo.JPG?v=2")["mediaType"] == "image/jpeg"  # type: ignore[index]
    assert icon("https://x.example/avatar") == {"type": "Image", "url": "https://x.example/avatar"}
    assert icon("ftp://x.example/a.png") is None


def test_text_to_html() -> None:
    assert text_to_html("a < b\r\nc\n\n\n d ") == "<p>a &lt; b<br>c</p><p>d</p>"


def test_instance_actor(keypair: KeyPair) -> None:
    actor = build_instance_actor("bridge.example", keypair.public_pem, URLS)
    assert actor["@context"][0] == AS_NAMESPACE
    assert actor["id"] == "https://bridge.example/actor"
    assert actor["type"] == "Application"
    assert actor["preferredUsername"] == "bridge.example"
    assert actor["manuallyApprovesFollowers"] is True
    assert actor["url"] == "https://bridge.example/"
    assert actor["inbox"] == "https://bridge.example/inbox"
    assert actor["outbox"] == "https://bridge.example/actor/outbox"
    assert actor["publicKey"] == {
        "id": "https://bridge.example/actor#main-key",
        "owner": "https://bridge.example/actor",
        "publicKeyPem": keypair.public_pem,
    }


def test_blog_with_other_handle_gets_its_own_urls(keypair: KeyPair) -> None:
    blog = replace(make_blog(), handle="other_blog")
    actor = build_actor(blog, keypair.public_pem, URLS)
    assert actor["id"] == "https://bridge.example/users/other_blog"
    assert actor["followers"] == "https://bridge.example/users/other_blog/followers"
    assert actor["publicKey"]["id"] == "https://bridge.example/users/other_blog#main-key"
