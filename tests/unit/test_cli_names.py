"""Account names derived by `feedfed blogs add` when --handle is not given."""

from __future__ import annotations

import pytest

from bridge.cli import handle_from


@pytest.mark.parametrize(
    ("title", "url", "handle"),
    [
        ("talkabout", "http://www.talkabout.de/feed/", "talkabout"),
        ("Müller's Blög!", "https://x.example/feed", "muller_s_blog"),
        ("", "https://www.talkabout.de/feed/", "talkabout_de"),
        (None, "https://blog.example.org/feed", "blog_example_org"),
        ("日本語", "https://blog.example.org/feed", "blog_example_org"),
        ("A" * 50, "https://x.example/", "a" * 30),
    ],
)
def test_handle_from(title: str | None, url: str, handle: str) -> None:
    assert handle_from(title, url) == handle
