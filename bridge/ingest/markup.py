"""Small, pure operations on the HTML found inside feeds.

Everything here walks markup with the stdlib :class:`html.parser.HTMLParser` (never regular
expressions over HTML): making URLs absolute, collecting ``<img>`` elements, turning an HTML
fragment into plain text and plain text into an HTML fragment.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from bridge.entries import Image

# Attributes that hold one URL, per element (what browsers resolve against the document base).
_URL_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href"}),
    "area": frozenset({"href"}),
    "audio": frozenset({"src"}),
    "blockquote": frozenset({"cite"}),
    "del": frozenset({"cite"}),
    "embed": frozenset({"src"}),
    "iframe": frozenset({"src", "longdesc"}),
    "img": frozenset({"src", "longdesc"}),
    "ins": frozenset({"cite"}),
    "link": frozenset({"href"}),
    "object": frozenset({"data"}),
    "q": frozenset({"cite"}),
    "source": frozenset({"src"}),
    "track": frozenset({"src"}),
    "video": frozenset({"src", "poster"}),
}
# Attributes that hold a comma-separated list of "URL descriptor" candidates.
_SRCSET_ATTRIBUTES: dict[str, frozenset[str]] = {
    "img": frozenset({"srcset"}),
    "source": frozenset({"srcset"}),
}
_VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"track", "wbr"}
)
# Block-level elements whose boundaries separate words when markup becomes text.
_BREAKING_ELEMENTS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
    | {"pre", "tr", "td", "th", "table", "section", "article", "header", "footer", "figure"}
    | {"figcaption", "hr", "dd", "dt", "dl"}
)
_WHITESPACE = re.compile(r"\s+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def is_http_url(value: str | None) -> bool:
    """True for an absolute ``http``/``https`` URL with a host."""
    if not value:
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        # urlsplit rejects malformed IPv6 hosts such as "http://[::1"; they are not URLs.
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def absolute_url(value: str | None, base: str | None) -> str | None:
    """``value`` resolved against ``base`` (``None`` for an empty value).

    Values that cannot be joined (a malformed IPv6 host) are kept as given: they are data from
    the feed, and dropping them silently would hide the publisher's mistake.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not base:
        return value
    try:
        return urljoin(base, value)
    except ValueError:
        return value


def http_url(value: object, base: str | None) -> str | None:
    """``value`` as an absolute http(s) URL resolved against ``base``, or ``None``."""
    if not isinstance(value, str):
        return None
    resolved = absolute_url(value, base)
    return resolved if is_http_url(resolved) else None


def resolve_urls(fragment: str, base: str | None) -> str:
    """Return ``fragment`` with every URL attribute made absolute against ``base``.

    Tags whose URLs are already absolute are emitted exactly as they were written, so running
    this twice changes nothing and stored content hashes stay stable.
    """
    if not base or not fragment:
        return fragment
    rewriter = _UrlRewriter(base)
    rewriter.feed(fragment)
    rewriter.close()
    return "".join(rewriter.out)


def extract_images(fragment: str | None) -> list[Image]:
    """Every ``<img>`` with an http(s) ``src`` in ``fragment``, in document order.

    ``alt`` is kept; ``width``/``height`` only when they are plain integers (``"300"``, not
    ``"auto"`` or ``"50%"``). Call this on markup whose URLs are already absolute.
    """
    if not fragment:
        return []
    collector = _ImageCollector()
    collector.feed(fragment)
    collector.close()
    return collector.images


def html_to_text(fragment: str | None) -> str | None:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    if fragment is None:
        return None
    extractor = _TextExtractor()
    extractor.feed(fragment)
    extractor.close()
    text = _WHITESPACE.sub(" ", "".join(extractor.parts)).strip()
    return text or None


def text_to_html(text: str | None) -> str | None:
    """Plain text as an HTML fragment: escaped, blank lines make paragraphs, newlines ``<br>``."""
    if text is None or not text.strip():
        return None
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text.strip()) if p.strip()]
    return "".join(
        "<p>" + "<br />".join(html.escape(line.strip()) for line in p.splitlines()) + "</p>"
        for p in paragraphs
    )


def clean_text(value: str | None) -> str | None:
    """A text field as readers expect it: entities decoded, whitespace collapsed, or ``None``.

    Decoding once more is deliberate: WordPress and others double-encode titles
    (``&amp;#8220;``), which the XML layer only decodes once.
    """
    if value is None:
        return None
    text = _WHITESPACE.sub(" ", html.unescape(value)).strip()
    return text or None


def dimension(value: object) -> int | None:
    """A width or height given as a plain integer (``"300"``), else ``None`` (``"50%"``)."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() else None


def _serialize_attrs(attrs: list[tuple[str, str | None]]) -> str:
    return "".join(
        f" {name}" if value is None else f' {name}="{html.escape(value, quote=True)}"'
        for name, value in attrs
    )


class _UrlRewriter(HTMLParser):
    """Re-emits markup unchanged except for relative URLs in URL-bearing attributes."""

    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=False)
        self.base = base
        self.out: list[str] = []

    def _rewrite(
        self, tag: str, attrs: list[tuple[str, str | None]]
    ) -> list[tuple[str, str | None]] | None:
        """The attributes with URLs resolved, or ``None`` when nothing changed."""
        url_names = _URL_ATTRIBUTES.get(tag, frozenset())
        srcset_names = _SRCSET_ATTRIBUTES.get(tag, frozenset())
        changed = False
        rewritten: list[tuple[str, str | None]] = []
        for name, value in attrs:
            new_value = value
            if value is not None and name in url_names:
                new_value = absolute_url(value, self.base) or value
            elif value is not None and name in srcset_names:
                new_value = self._resolve_srcset(value)
            changed = changed or new_value != value
            rewritten.append((name, new_value))
        return rewritten if changed else None

    def _resolve_srcset(self, value: str) -> str:
        candidates = []
        for candidate in value.split(","):
            pieces = candidate.strip().split(None, 1)
            if not pieces:
                continue
            url = absolute_url(pieces[0], self.base) or pieces[0]
            candidates.append(" ".join([url, *pieces[1:]]))
        return ", ".join(candidates)

    def _emit_tag(self, tag: str, attrs: list[tuple[str, str | None]], closing: str) -> None:
        rewritten = self._rewrite(tag, attrs)
        original = self.get_starttag_text()
        if rewritten is None and original is not None:
            self.out.append(original)
        else:
            self.out.append(f"<{tag}{_serialize_attrs(rewritten or attrs)}{closing}>")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._emit_tag(tag, attrs, " /" if tag in _VOID_ELEMENTS else "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._emit_tag(tag, attrs, " /")

    def handle_endtag(self, tag: str) -> None:
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.out.append(f"<![{data}]>")


class _ImageCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[Image] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "img":
            return
        values = {name: value for name, value in attrs if value is not None}
        src = values.get("src", "").strip()
        if not is_http_url(src):
            return
        self.images.append(
            Image(
                url=src,
                alt=_WHITESPACE.sub(" ", values.get("alt", "")).strip(),
                width=dimension(values.get("width")),
                height=dimension(values.get("height")),
            )
        )

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip_depth += 1
        elif tag in _BREAKING_ELEMENTS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BREAKING_ELEMENTS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)
