"""Plain text from feed HTML: the excerpt of a post, and character references made readable.

Pure functions on strings; the HTML is read by a linear, tolerant reader (feed HTML is often
broken, sometimes hostile), never executed or fetched.
"""

from __future__ import annotations

import html
import re
from typing import Final

from bridge.backfeed.sanitize import html_to_text as sanitized_text

EXCERPT_LENGTH: Final = 500
"""Excerpt length in characters: FEP-b2b8 asks for "about 500 characters" in `summary`."""

ELLIPSIS: Final = "…"

# WordPress (and others) end a truncated excerpt with "[…]" or "[...]"; some with a bare "…".
_MORE_MARKER: Final = re.compile(r"\s*(?:\[\s*(?:…|\.\.\.)\s*\]|…|\.\.\.)\s*$")
_CHARREF: Final = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# Decoding these would change the markup itself (or smuggle invisible controls into it).
_KEEP_ESCAPED: Final = frozenset("<>&\"'")
_SENTENCE_END: Final = (".", "!", "?", "…", ":", ";")


def html_to_text(markup: str) -> str:
    """The readable text of an HTML fragment on one line: tags dropped, entities decoded.

    Block boundaries become spaces and runs of whitespace collapse to one space; the text of
    scripts and styles is dropped. The linear reader of :mod:`bridge.backfeed.sanitize` does the
    work: the stdlib parser is superlinear on hostile markup, which a feed can carry too.
    """
    return sanitized_text(markup)


def excerpt(markup: str, limit: int = EXCERPT_LENGTH) -> str:
    """A plain-text excerpt of an HTML fragment: at most ``limit`` characters, whole words.

    A shortened text ends with an ellipsis, and so does a text that the publisher already
    marked as shortened ("… wolle [&#8230;]" becomes "… wolle…"), so both read alike.
    A single word longer than ``limit`` is cut inside the word, as nothing else would fit.
    """
    text = html_to_text(markup)
    marked = _MORE_MARKER.search(text)
    if marked:
        text = text[: marked.start()]
    if not marked and len(text) <= limit:
        return text
    # Room for the ellipsis and the space that may precede it.
    if len(text) > limit - 2:
        text = _cut_at_word(text, limit - 2)
    if not text:
        return ""
    # "Dialog. …" reads better than "Dialog.…"; "wolle…" better than "wolle …".
    return f"{text} {ELLIPSIS}" if text.endswith(_SENTENCE_END) else f"{text}{ELLIPSIS}"


def _cut_at_word(text: str, limit: int) -> str:
    head = text[: limit + 1]
    space = head.rfind(" ")
    cut = head[:space] if space > 0 else text[:limit]
    # A dangling comma or dash before the ellipsis looks like an error, not an omission.
    return cut.rstrip(" ,;–—-([{«„“\"'")


def decode_character_references(markup: str) -> str:
    """Replace character references (``&#8220;``, ``&auml;``) in HTML by the characters.

    Feed parsers keep references as they were written, so WordPress content arrives full of
    ``&#8220;`` and ``&#8230;``. The result is the same HTML, only readable (in the JSON, in
    logs, to any consumer that does not decode references in every property). References
    that spell markup (``&lt;`` ``&gt;`` ``&amp;`` ``&quot;`` ``&#39;``), control characters
    and unknown names stay as they are, so the markup means exactly what it meant.
    """

    def decode(match: re.Match[str]) -> str:
        reference = match.group(0)
        character = html.unescape(reference)
        if character == reference:
            return reference
        if any(c in _KEEP_ESCAPED or _is_control(c) for c in character):
            return reference
        return character

    return _CHARREF.sub(decode, markup)


def _is_control(character: str) -> bool:
    code = ord(character)
    return code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000 or code == 0xFFFD
