"""Config of the sinks: the ``sink`` key of ``[[blogs]]``, the WordPress keys (together), the
password's environment variable name, and the linkback rate limit. Errors name the key."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config import DEFAULT_LINKBACKS_PER_MINUTE, SINK_NAMES, BlogConfig, build_config
from bridge.errors import ConfigError

WORDPRESS = {
    "wordpress_url": "https://www.talkabout.de/",
    "wordpress_user": "feedfed",
    "wordpress_password_env": "FEEDFED_TALKABOUT_WP_PASSWORD",
}


def blog(**keys: Any) -> BlogConfig:
    table = {"handle": "talkabout", "feed_url": "https://www.talkabout.de/feed/", **keys}
    (built,) = build_config({"blogs": [table]}, env={}).blogs
    return built


def refused(**keys: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        blog(**keys)
    return caught.value


def test_defaults_are_the_feed_sink_without_wordpress() -> None:
    config = blog()
    assert config.sink == "feed"
    assert (config.wordpress_url, config.wordpress_user, config.wordpress_password_env) == (
        None,
        None,
        None,
    )
    assert config.likes_as_comments is False
    assert config.linkbacks_per_minute == DEFAULT_LINKBACKS_PER_MINUTE == 10


@pytest.mark.parametrize("sink", ["feed", "pingback", "webmention"])
def test_sinks_without_wordpress_keys(sink: str) -> None:
    assert blog(sink=sink).sink == sink


def test_every_sink_name_is_accepted() -> None:
    assert SINK_NAMES == ("feed", "wordpress", "pingback", "webmention")
    for sink in SINK_NAMES:
        assert blog(sink=sink, **WORDPRESS).sink == sink


@pytest.mark.parametrize("sink", ["WordPress", "rest", "", "xmlrpc", 1, True, ["feed"]])
def test_unknown_sinks_are_refused(sink: Any) -> None:
    error = refused(sink=sink)
    assert error.key == "blogs[0].sink"
    assert "feed, wordpress, pingback, webmention" in error.problem


def test_wordpress_sink_keeps_its_keys() -> None:
    config = blog(sink="wordpress", likes_as_comments=True, **WORDPRESS)
    assert config.sink == "wordpress"
    assert config.wordpress_url == "https://www.talkabout.de/"
    assert config.wordpress_user == "feedfed"
    assert config.wordpress_password_env == "FEEDFED_TALKABOUT_WP_PASSWORD"
    assert config.likes_as_comments is True


@pytest.mark.parametrize("missing", sorted(WORDPRESS))
def test_wordpress_sink_needs_all_three_keys(missing: str) -> None:
    keys = {k: v for k, v in WORDPRESS.items() if k != missing}
    error = refused(sink="wordpress", **keys)
    assert error.key == "blogs[0].sink"
    for name in WORDPRESS:
        assert name in error.problem


def test_wordpress_keys_serve_the_dialog_with_another_sink() -> None:
    # The dialog reads the blog's own comments through the REST API where wordpress_url is
    # set, whatever way the bridge writes into the blog.
    config = blog(sink="webmention", wordpress_url="https://www.talkabout.de/")
    assert (config.sink, config.wordpress_url) == ("webmention", "https://www.talkabout.de/")


@pytest.mark.parametrize("url", ["www.talkabout.de", "ftp://www.talkabout.de/", "https://"])
def test_wordpress_url_must_be_absolute_http(url: str) -> None:
    assert refused(sink="wordpress", **{**WORDPRESS, "wordpress_url": url}).key == (
        "blogs[0].wordpress_url"
    )


@pytest.mark.parametrize("key", sorted(WORDPRESS))
@pytest.mark.parametrize("value", ["", "   ", 42])
def test_wordpress_keys_must_be_non_empty_strings(key: str, value: Any) -> None:
    assert refused(sink="wordpress", **{**WORDPRESS, key: value}).key == f"blogs[0].{key}"


@pytest.mark.parametrize("name", ["WP_PASSWORD", "_wp", "FEEDFED_TALKABOUT_WP_PASSWORD", "p1"])
def test_password_env_names_an_environment_variable(name: str) -> None:
    config = blog(sink="wordpress", **{**WORDPRESS, "wordpress_password_env": name})
    assert config.wordpress_password_env == name


@pytest.mark.parametrize(
    "value", ["abcd EFGH ijkl MNOP qrst UVWX", "1PASSWORD", "WP-PASSWORD", "$WP_PASSWORD", "a.b"]
)
def test_password_env_is_never_the_password_itself(value: str) -> None:
    error = refused(sink="wordpress", **{**WORDPRESS, "wordpress_password_env": value})
    assert error.key == "blogs[0].wordpress_password_env"
    assert "environment variable" in error.problem
    assert value not in str(error)  # a pasted secret does not end up in logs


@pytest.mark.parametrize("value", [1, 10, 600])
def test_linkbacks_per_minute(value: int) -> None:
    assert blog(linkbacks_per_minute=value).linkbacks_per_minute == value


@pytest.mark.parametrize("value", [0, -1, 2.5, "10", True])
def test_linkbacks_per_minute_is_a_whole_number_of_at_least_one(value: Any) -> None:
    assert refused(linkbacks_per_minute=value).key == "blogs[0].linkbacks_per_minute"


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_likes_as_comments_is_a_boolean(value: Any) -> None:
    assert refused(likes_as_comments=value).key == "blogs[0].likes_as_comments"


def test_unknown_sink_keys_are_refused() -> None:
    assert refused(wordpress_password="secret").key == "blogs[0].wordpress_password"


def test_errors_name_the_blog_by_its_index() -> None:
    other = {"handle": "other", "feed_url": "https://other.example/feed", "sink": "rss"}
    first = {"handle": "talkabout", "feed_url": "https://www.talkabout.de/feed/"}
    with pytest.raises(ConfigError) as caught:
        build_config({"blogs": [first, other]}, env={})
    assert caught.value.key == "blogs[1].sink"
