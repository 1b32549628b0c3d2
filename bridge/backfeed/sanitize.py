"""What the fediverse says, made safe to show: comment HTML, display names, plain text.

Everything here is pure and runs in time linear in its input, so a hostile 1 MB reply costs
milliseconds: HTML is parsed once by nh3 (ammonia, a real HTML5 parser in Rust), and what
nh3 returns is canonical (lower-case tags, double-quoted attributes, no comments), which is
what makes the small regular-expression passes over its output exact.

- :func:`sanitize_html` keeps what Mastodon keeps in remote statuses (links, paragraphs,
  lists, quotes, code, emphasis, its mention and hashtag classes) and nothing that runs,
  styles, embeds or points anywhere but http(s).
- :func:`html_to_text` is the readable text of untrusted HTML on one line.
- :func:`plain_name` turns a remote display name into plain text that cannot reorder the
  text around it; :func:`isolate` wraps user text for embedding into our own titles.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from contextvars import ContextVar
from html.entities import html5
from typing import Final
from urllib.parse import urljoin, urlsplit

import nh3

__all__ = [
    "NAME_LIMIT",
    "html_to_text",
    "isolate",
    "plain_line",
    "plain_name",
    "sanitize_html",
    "strip_controls",
]

NAME_LIMIT: Final = 100
"""Display names longer than this are cut (Mastodon allows 30, Misskey 50, others more)."""

LINK_REL: Final = "nofollow noopener noreferrer ugc"
"""Every kept link is user-generated content: no ranking, no opener, no referrer."""

_TAGS: Final = frozenset(
    {"a", "p", "br", "span", "ul", "ol", "li", "blockquote", "code", "pre"}
    | {"em", "strong", "b", "i", "del", "s"}
    # Headings are kept only to be rewritten as bold paragraphs below (as Mastodon does):
    # dropping the tag alone would run the heading into the next paragraph.
    | {"h1", "h2", "h3", "h4", "h5", "h6"}
)
# Elements whose content is code, styling, embedded documents or form state, never prose.
_DROP_WITH_CONTENT: Final = frozenset(
    {"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math"}
    | {"textarea", "select", "title", "noembed", "noframes", "xmp"}
)
_SPAN_CLASSES: Final = frozenset({"h-card", "mention", "hashtag", "invisible", "ellipsis"})
_CLASSES: Final = {"a": frozenset({"mention", "hashtag", "u-url"}), "span": _SPAN_CLASSES}
# Block boundaries that must separate words when markup becomes one line of text.
_TEXT_BREAKS: Final = frozenset(
    {"p", "br", "li", "ul", "ol", "blockquote", "pre", "div", "tr", "td", "th", "table"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "dd", "dt", "hr", "figcaption", "section"}
    | {"article", "header", "footer", "aside", "address", "details", "summary"}
)

# C0 controls except tab and newline, DEL, C1 controls, lone surrogates (JSON can carry
# them; they are no characters and would break the UTF-8 of every feed), the noncharacters
# U+FDD0–U+FDEF (never text; one serves as a placeholder below) and the two XML forbids.
# Carriage returns are folded into newlines before this runs.
_CONTROLS: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
# nh3 takes time quadratic in the number of ampersands in the decoded text (7 s for a
# megabyte of them). Every ampersand that stands for itself (bare, or written as a reference
# to "&") therefore passes the sanitiser as this placeholder and is put back afterwards;
# references to anything else stay for the parser to decode.
_AMPERSAND: Final = "\ufdd0"
# An ampersand that starts no reference, or a name without ";" (read literally here).
_BARE_AMPERSAND: Final = re.compile(
    r"&(?!#[0-9]|#[xX][0-9a-fA-F]|[A-Za-z])|&(?=[A-Za-z][A-Za-z0-9]*(?![A-Za-z0-9;]))"
)
_REFERENCE: Final = re.compile(
    r"&(#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{0,31};)"
)
# Directional formatting that can reorder the text around a name (embeddings, overrides,
# isolates, marks) and invisible characters used to hide or blank names. ZWJ and ZWNJ stay
# inside names: emoji sequences and Persian or Indic spelling need them.
_INVISIBLE: Final = re.compile("[\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
# Characters that render as nothing and are used at either end of blank-looking names.
_BLANK_ENDS: Final = "\u115f\u1160\u180e\u200c\u200d\u2800\u3164\uffa0"
_WHITESPACE: Final = re.compile(r"\s+")
# nh3's output writes every attribute as ` name="value"` with `"` escaped inside values.
_ATTRIBUTE: Final = re.compile(r'\s([a-z][a-z0-9-]*)="([^"]*)"')
_REWRITTEN: Final = re.compile(r'<(/?)(a|h[1-6])((?:\s[a-z][a-z0-9-]*="[^"]*")*)>')
_ANY_TAG: Final = re.compile(r"<[^>]*>")
_BREAK_TAG: Final = re.compile(r"</?(?:" + "|".join(sorted(_TEXT_BREAKS)) + r")\s*/?>")
_SERIALIZER_ESCAPES: Final = (("&lt;", "<"), ("&gt;", ">"), ("&nbsp;", "\xa0"), ("&amp;", "&"))
_RAW_INPUT_FACTOR: Final = 100

# Isolate initiators (LRI, RLI, FSI) and their terminator (PDI).
_INITIATORS: Final = "\u2066\u2067\u2068"
_PDI: Final = "\u2069"
_FSI: Final = "\u2068"


def strip_controls(text: str) -> str:
    """``text`` without control characters, lone surrogates and XML-forbidden characters.

    Newlines and tabs stay; a carriage return (alone or before a newline) becomes a newline.
    The result is safe in XML 1.0 (feeds), in JSON and in every HTML context.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def sanitize_html(markup: str, *, base_url: str | None = None) -> str:
    """Untrusted HTML (a reply's ``content``) reduced to the allow-list, ready to show.

    Kept: links (``href`` only when it is http(s), ``rel`` forced to :data:`LINK_REL`, the
    ``mention``/``hashtag``/``u-url`` classes), paragraphs, line breaks, lists, quotes, code,
    emphasis, strike-through, and ``span`` with Mastodon's ``h-card``, ``mention``,
    ``hashtag``, ``invisible`` and ``ellipsis`` classes. Headings become bold paragraphs.
    Everything else goes: scripts and styles with their content, event handlers, ``style``,
    images, frames, forms, comments. A relative link is resolved against ``base_url`` (the
    reply's own URL); without one, or when it is no http(s) URL, the link becomes a plain
    ``span`` and its text stays. Control characters are removed (newlines and tabs stay).
    """
    if not markup:
        return ""
    protected = _protect_ampersands(strip_controls(markup))
    if base_url is None:
        cleaned = _CLEANER.clean(protected)
    else:
        token = _BASE_URL.set(base_url)
        try:
            cleaned = _RESOLVING_CLEANER.clean(protected)
        finally:
            _BASE_URL.reset(token)
    # nh3 writes attribute values as given, so the placeholder comes back unencoded in links
    # too. Character references in the input (`&#1;`) come out of the parser as controls.
    return strip_controls(_rewrite_tags(cleaned).replace(_AMPERSAND, "&amp;"))


def html_to_text(markup: str) -> str:
    """The readable text of untrusted HTML on one line: tags dropped, entities decoded.

    Block boundaries become spaces, whitespace runs collapse, the content of scripts and
    styles is dropped, control characters go. Unlike the stdlib-parser version in
    :mod:`bridge.activitypub.excerpts` (made for the blog's own feed), this one stays linear
    on hostile markup such as ``"<a " * 300_000``, which a reply may well be.
    """
    if not markup:
        return ""
    bare = _TEXT_CLEANER.clean(_protect_ampersands(strip_controls(markup)))
    bare = _ANY_TAG.sub("", _BREAK_TAG.sub(" ", bare))
    # What nh3 escapes in text, and nothing else, is left to decode (faster than unescape).
    for escaped, character in _SERIALIZER_ESCAPES:
        bare = bare.replace(escaped, character)
    text = bare.replace(_AMPERSAND, "&")
    return " ".join(strip_controls(text).split())


def plain_line(text: str, limit: int) -> str:
    """Plain text as one safe line: no controls, no directional formatting, no invisible
    padding, whitespace collapsed, at most ``limit`` characters (cut with an ellipsis)."""
    text = strip_controls(text[: limit * _RAW_INPUT_FACTOR])
    text = _WHITESPACE.sub(" ", _INVISIBLE.sub("", text))
    text = _strip_blank_ends(text)
    if len(text) > limit:
        text = _strip_blank_ends(text[: limit - 1]) + "…"
    return text


def plain_name(name: str | None, fallback: str) -> str:
    """A remote display name as plain text, safe to put anywhere.

    Markup and character references are decoded to text (``Tom &amp; Jerry`` reads
    ``Tom & Jerry``), controls and directional formatting characters are removed, blank
    padding is stripped, whitespace collapsed and the length capped at :data:`NAME_LIMIT`.
    Custom emoji shortcodes (``:blobcat:``) stay as text. A name that is empty after all
    this gives way to ``fallback`` (cleaned the same way; usually the account's handle).
    """
    raw = name[: NAME_LIMIT * _RAW_INPUT_FACTOR] if name else ""
    cleaned = plain_line(html_to_text(raw), NAME_LIMIT)
    if cleaned:
        return cleaned
    return plain_line(fallback, NAME_LIMIT) or "?"


def isolate(text: str) -> str:
    """``text`` wrapped in FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE (U+2068 … U+2069).

    For user text embedded in our own sentences ("⁨Jens Nirschl⁩ boosted …"): the isolate
    takes its direction from its own first strong character and cannot reorder the text
    around it. Isolates inside ``text`` are balanced first, so a stray U+2069 cannot close
    ours early and an unclosed initiator cannot swallow what follows.
    """
    parts: list[str] = []
    depth = 0
    for character in text:
        if character in _INITIATORS:
            depth += 1
        elif character == _PDI:
            if depth == 0:
                continue
            depth -= 1
        parts.append(character)
    return _FSI + "".join(parts) + _PDI * depth + _PDI


def _protect_ampersands(markup: str) -> str:
    """``markup`` with each ampersand that means itself replaced by the placeholder."""
    return _REFERENCE.sub(_protect_reference, _BARE_AMPERSAND.sub(_AMPERSAND, markup))


def _protect_reference(match: re.Match[str]) -> str:
    reference = match.group(1)
    if reference.startswith("#"):
        digits = reference[1:].rstrip(";")
        code = int(digits[1:], 16) if digits[0] in "xX" else int(digits)
        return _AMPERSAND if code == 0x26 else match.group(0)
    if reference in html5:
        return _AMPERSAND if html5[reference] == "&" else match.group(0)
    return _AMPERSAND + reference  # an unknown name is text


def _strip_blank_ends(text: str) -> str:
    return text.strip().strip(_BLANK_ENDS).strip()


def _rewrite_tags(cleaned: str) -> str:
    """Headings become bold paragraphs; anchors left without ``href`` become spans."""
    # Anchors never nest in nh3's output (the HTML5 parser closes one before the next), so
    # an anchor's end tag comes before any other anchor starts.
    linked = True

    def rewrite(match: re.Match[str]) -> str:
        nonlocal linked
        closing, tag, attributes = match.group(1), match.group(2), match.group(3)
        if tag != "a":
            return "</strong></p>" if closing else "<p><strong>"
        if closing:
            return "</a>" if linked else "</span>"
        values = dict(_ATTRIBUTE.findall(attributes))
        linked = "href" in values
        if linked:
            return match.group(0)
        kept = [c for c in html.unescape(values.get("class", "")).split() if c in _SPAN_CLASSES]
        return f'<span class="{" ".join(kept)}">' if kept else "<span>"

    return _REWRITTEN.sub(rewrite, cleaned)


# The base of relative links, read by the one resolving cleaner while it cleans (a clean is
# synchronous, so it is always the caller's own). Building an nh3.Cleaner per reply for its
# base cost more than cleaning the reply.
_BASE_URL: ContextVar[str | None] = ContextVar("sanitize_base_url", default=None)


def _resolve_relative(url: str) -> str | None:
    base_url = _BASE_URL.get()
    if base_url is None:
        return None
    try:
        absolute = urljoin(base_url, url.strip())
        parts = urlsplit(absolute)
    except ValueError:
        return None
    return absolute if parts.scheme in ("http", "https") and parts.hostname else None


def _drop_relative(url: str) -> None:
    return None


def _make_cleaner(relative: Callable[[str], str | None]) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={"a": {"href"}},
        allowed_classes={tag: set(names) for tag, names in _CLASSES.items()},
        link_rel=LINK_REL,
        url_schemes={"http", "https"},
        url_relative=relative,
        strip_comments=True,
    )


_CLEANER: Final = _make_cleaner(_drop_relative)
_RESOLVING_CLEANER: Final = _make_cleaner(_resolve_relative)
_TEXT_CLEANER: Final = nh3.Cleaner(
    tags=set(_TEXT_BREAKS),
    clean_content_tags=set(_DROP_WITH_CONTENT),
    attributes={},
    link_rel=None,
    strip_comments=True,
)
