"""How the fake WordPress blog receives linkbacks: XML-RPC pingback.ping and webmentions.

Both fetch the source the way WordPress does. ``pingback.ping`` follows ``pingback_ping`` of
``class-wp-xmlrpc-server.php``: no redirects, only the first 150 KB, a <title> needed, the
target linked inside an ``<a>``; faults 0/16/17/32/33/48. The webmention receiver follows the
Webmention plugin: 400 for bad parameters or a source without the link, a 410 source deletes the
webmention it recorded before, a repeated webmention from the same source updates it.
"""

from __future__ import annotations

import html
import re
import xmlrpc.client
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.wordpress_blog import FakeWordPressBlog, WPComment

PINGBACK_READ_LIMIT = 153_600
_TITLE = re.compile(r"<title>([^<]*?)</title>", re.I | re.S)
_BLOCKS = re.compile(
    r"</*(h1|h2|h3|h4|h5|h6|p|th|td|li|dt|dd|pre|caption|input|textarea|button|body)[^>]*>"
)


def fault(code: int, message: str) -> web.Response:
    """An XML-RPC fault answer (HTTP 200, as every XML-RPC server answers faults)."""
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True)
    return web.Response(body=body.encode(), content_type="text/xml")


async def xmlrpc_endpoint(blog: FakeWordPressBlog, request: web.Request) -> web.Response:
    """``/xmlrpc.php``: only ``pingback.ping`` is offered."""
    try:
        params, method = xmlrpc.client.loads(await request.read())
    except Exception:  # noqa: BLE001 - any garbage is a parse error, as for PHP's IXR
        return fault(-32700, "parse error. not well formed")
    if method != "pingback.ping":
        return fault(-32601, f"server error. requested method {method} does not exist.")
    if len(params) != 2 or not all(isinstance(p, str) for p in params):
        return fault(-32602, "server error. wrong number of method parameters.")
    source, target = params
    blog.pingback_calls.append((source, target))
    outcome = await _pingback(blog, source, target)
    if isinstance(outcome, web.Response):
        return outcome
    body = xmlrpc.client.dumps((outcome,), methodresponse=True)
    return web.Response(body=body.encode(), content_type="text/xml")


async def _pingback(blog: FakeWordPressBlog, source: str, target: str) -> str | web.Response:
    source = source.replace("&amp;", "&")
    target = target.replace("&amp;", "&")
    if blog.host not in target:
        return fault(0, "Is there no link to us?")
    post = blog.post_for_url(target)
    if post is None:
        return fault(33, "The specified target URL cannot be used as a target.")
    if blog.post_for_url(source) is post:
        return fault(0, "The source URL and the target URL cannot both point to the same resource.")
    if not post.pings_open:
        return fault(33, "The specified target URL cannot be used as a target.")
    if any(c.post == post.id and c.author_url == source for c in blog.comments.values()):
        return fault(48, "The pingback has already been registered.")
    raw = await _fetch_source(blog.fetcher, source, redirects=False, limit=PINGBACK_READ_LIMIT)
    if raw is None or not raw[1]:
        return fault(16, "The source URL does not exist.")
    text = raw[1].replace("<!DOC", "<DOC")
    text = re.sub(r"[\r\n\t ]+", " ", text)
    text = _BLOCKS.sub("\n\n", text)
    title_match = _TITLE.search(text)
    title = title_match.group(1) if title_match else ""
    if not title:
        return fault(32, "We cannot find a title on that page.")
    excerpt = None
    for para in text.split("\n\n"):
        if target not in para:
            continue
        context = re.search(r"<a[^>]+?" + re.escape(target) + r"[^>]*>([^>]+?)</a>", para)
        if context:
            excerpt = re.sub(r"<[^>]+>", "", para).strip()[:300]
            break
    if excerpt is None:
        return fault(17, "The source URL does not contain a link to the target URL.")
    blog.add_comment(
        post=post.id,
        author_name=html.unescape(title.strip()),
        author_url=source,
        content=f"[&#8230;] {html.escape(excerpt)} [&#8230;]",
        type_="pingback",
    )
    return f"Pingback from {source} to {target} registered. Keep the web talking! :-)"


async def webmention_endpoint(blog: FakeWordPressBlog, request: web.Request) -> web.Response:
    """``/wp-json/webmention/1.0/endpoint``: verify at once, answer 200 (or 202 with a
    status URL when ``blog.webmention_async``)."""
    form = await request.post()
    source, target = str(form.get("source", "")), str(form.get("target", ""))
    blog.webmention_calls.append((source, target))
    if not source.startswith(("http://", "https://")):
        return _wm_error("source_missing", "Source is missing or invalid")
    if not target.startswith(("http://", "https://")):
        return _wm_error("target_missing", "Target is missing or invalid")
    if source == target:
        return _wm_error(
            "source_equals_target", "Target and source cannot direct to the same resource"
        )
    post = blog.post_for_url(target)
    if post is None:
        return _wm_error("target_not_valid", "Target is not a valid post")
    if not post.pings_open:
        return _wm_error("comments_closed", "Pings are disabled for this post")
    fetched = await _fetch_source(blog.fetcher, source, redirects=True, limit=1024 * 1024)
    existing = blog.webmention_from(post.id, source)
    if fetched is None:
        return _wm_error("source_not_found", "Source URL not found", status=400)
    status, text = fetched
    if status == 410:
        if existing is not None:
            existing.status = "trash"
            return _wm_ok(blog, existing, "deleted")
        return _wm_error("source_not_found", "Source URL is gone", status=400)
    if status >= 400:
        return _wm_error("source_not_found", "Source URL not found", status=400)
    if not re.search(r"""href\s*=\s*["']?""" + re.escape(target) + r"""["'\s>]""", text):
        return _wm_error("target_not_found", "Cannot find target link")
    title_match = _TITLE.search(text)
    name = html.unescape(title_match.group(1).strip()) if title_match else source
    content = re.sub(r"<[^>]+>", " ", _body_of(text))
    content = html.escape(re.sub(r"\s+", " ", content).strip()[:500])
    if existing is not None:
        existing.author_name, existing.content, existing.status = name, content, "approved"
        return _wm_ok(blog, existing, "updated")
    comment = blog.add_comment(
        post=post.id, author_name=name, author_url=source, content=content, type_="webmention"
    )
    return _wm_ok(blog, comment, "created")


def _wm_ok(blog: FakeWordPressBlog, comment: WPComment, what: str) -> web.Response:
    body = {"link": blog.comment_link(comment), "code": what, "message": f"webmention {what}"}
    if blog.webmention_async:
        location = f"{blog.url}/wp-json/webmention/1.0/status/{comment.id}"
        return web.json_response(body, status=202, headers={"Location": location})
    return web.json_response(body, status=200)


def _wm_error(code: str, message: str, status: int = 400) -> web.Response:
    return web.json_response({"code": code, "message": message, "data": status}, status=status)


def _body_of(text: str) -> str:
    match = re.search(r"<body[^>]*>(.*)</body>", text, re.I | re.S)
    return match.group(1) if match else text


async def _fetch_source(
    fetcher: aiohttp.ClientSession, url: str, *, redirects: bool, limit: int
) -> tuple[int, str] | None:
    """Status and (at most ``limit`` bytes of) body, or None when the fetch itself failed."""
    try:
        async with fetcher.get(
            url, allow_redirects=redirects, timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            data = b""
            while len(data) < limit:
                chunk = await response.content.read(limit - len(data))
                if not chunk:
                    break
                data += chunk
            return response.status, data.decode("utf-8", errors="replace")
    except (aiohttp.ClientError, TimeoutError):
        return None
