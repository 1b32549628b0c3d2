"""Reading ActivityStreams values: what counts as a URL."""

from __future__ import annotations

import sys

from bridge.activitypub.values import _SPACE_OR_CONTROL, is_url


def test_the_refused_characters_are_exactly_whitespace_and_c0_controls() -> None:
    # The regular expression stands for the per-character test it replaced.
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        expected = character.isspace() or character < " "
        assert (_SPACE_OR_CONTROL.search(character) is not None) == expected, hex(code)


def test_is_url_refuses_whitespace_and_controls_anywhere() -> None:
    assert is_url("https://a.example/notes/1")
    for bad in ("https://a.example/ 1", "https://a.example/\u00a01", "https://a.example/\x001"):
        assert not is_url(bad)
    assert not is_url("https://a.example/1\u2028")
    assert not is_url(None)
    assert not is_url("mailto:someone@a.example")
