"""A fake WordPress blog on 127.0.0.1: post pages, the REST API for posts and comments,
XML-RPC pingbacks and a webmention endpoint, with switchable failures.

Shaped after WordPress core (``WP_REST_Comments_Controller``, application passwords) and the
Webmention plugin; see :mod:`tests.fakes.wordpress_rest` for the REST API and
:mod:`tests.fakes.wordpress_linkbacks` for the linkback receivers.
Tests read ``blog.comments`` and ``blog.requests`` and switch ``blog.down`` (503 everywhere),
``blog.rate_limited`` (that many 429 answers), ``await blog.stop()``/``start()`` (connection
refused in between; the port stays).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from tests.fakes import wordpress_linkbacks, wordpress_rest
from tests.fakes.wordpress_rest import rest_error

USER = "editor"
APP_PASSWORD = "abcd EFGH ijkl MNOP qrst UVWX"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass
class WPPost:
    """A post; its page lives at ``/{slug}/``, its short link is ``/?p={id}``."""

    id: int
    slug: str
    title: str
    comments_open: bool = True
    pings_open: bool = True


@dataclass
class WPComment:
    """A row of ``wp_comments`` with its meta."""

    id: int
    post: int
    author_name: str
    author_url: str
    content: str
    type: str = "comment"
    parent: int = 0
    author_email: str = ""
    date_gmt: str = ""
    status: str = "approved"
    agent: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class FakeWordPressBlog:
    """The blog. ``registered_meta`` are the comment meta keys registered for REST."""

    def __init__(
        self,
        fetcher: aiohttp.ClientSession,
        *,
        registered_meta: tuple[str, ...] = ("feedfed_object_id", "feedfed_avatar", "feedfed_kind"),
        require_name_email: bool = True,
        pingback: bool = True,
        webmention: bool = True,
    ) -> None:
        self.fetcher = fetcher
        self.registered_meta = registered_meta
        self.require_name_email = require_name_email
        self.pingback = pingback
        self.webmention = webmention
        self.webmention_async = False
        self.posts: dict[int, WPPost] = {}
        self.comments: dict[int, WPComment] = {}
        self.requests: list[tuple[str, str]] = []
        self.pingback_calls: list[tuple[str, str]] = []
        self.webmention_calls: list[tuple[str, str]] = []
        self.password = APP_PASSWORD
        self.down = False
        self.rate_limited = 0
        self.retry_after = "120"
        self._next_comment = 100
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- running -------------------------------------------------------------------------
    async def start(self) -> str:
        """Serve on 127.0.0.1 (the same port again after :meth:`stop`); the base URL."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self.url

    async def stop(self) -> None:
        """Stop listening: requests are refused until :meth:`start`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- content -------------------------------------------------------------------------
    def add_post(self, post_id: int, slug: str, title: str = "Ein Beitrag") -> WPPost:
        post = WPPost(post_id, slug, title)
        self.posts[post_id] = post
        return post

    def post_link(self, post: WPPost) -> str:
        return f"{self.url}/{post.slug}/"

    def comment_link(self, comment: WPComment) -> str:
        return f"{self.post_link(self.posts[comment.post])}#comment-{comment.id}"

    def post_for_url(self, url: str) -> WPPost | None:
        """``url_to_postid``: the post behind a permalink or a ``?p=`` short link."""
        parts = urlsplit(url)
        if parts.netloc != self.host:
            return None
        query = parse_qs(parts.query)
        if "p" in query and query["p"][0].isdigit():
            return self.posts.get(int(query["p"][0]))
        slug = parts.path.strip("/")
        return next((p for p in self.posts.values() if p.slug == slug and slug), None)

    def add_comment(self, **fields: Any) -> WPComment:
        self._next_comment += 1
        fields["type"] = fields.pop("type_", fields.get("type", "comment"))
        fields.setdefault("date_gmt", NOW.strftime("%Y-%m-%dT%H:%M:%S"))
        comment = WPComment(id=self._next_comment, **fields)
        self.comments[comment.id] = comment
        return comment

    def webmention_from(self, post_id: int, source: str) -> WPComment | None:
        return next(
            (
                c
                for c in self.comments.values()
                if c.post == post_id and c.author_url == source and c.type == "webmention"
            ),
            None,
        )

    def visible(self, post_id: int, type_: str = "comment") -> list[WPComment]:
        """The comments of a post that are not trashed, of one type."""
        return [
            c
            for c in self.comments.values()
            if c.post == post_id and c.type == type_ and c.status != "trash"
        ]

    # --- HTTP ----------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if self.down:
            return web.Response(
                status=503, text="Service Unavailable", headers={"Retry-After": "60"}
            )
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return rest_error(
                429, "too_many_requests", "Slow down", {"Retry-After": self.retry_after}
            )
        path = request.path
        if path == "/xmlrpc.php" and request.method == "POST" and self.pingback:
            return await wordpress_linkbacks.xmlrpc_endpoint(self, request)
        if path == "/wp-json/webmention/1.0/endpoint" and request.method == "POST":
            return await wordpress_linkbacks.webmention_endpoint(self, request)
        if path.startswith("/wp-json/wp/v2/posts"):
            return wordpress_rest.posts_endpoint(self, request)
        if path.startswith("/wp-json/wp/v2/comments"):
            return await wordpress_rest.comments_endpoint(self, request)
        if path == "/" and "p" in request.query:
            post = self.post_for_url(str(request.url))
            if post is None:
                raise web.HTTPNotFound()
            raise web.HTTPMovedPermanently(self.post_link(post))
        post = self.post_for_url(str(request.url))
        if post is None or request.method != "GET":
            raise web.HTTPNotFound()
        return self._page(post)

    def _page(self, post: WPPost) -> web.Response:
        headers = {"Link": f'<{self.url}/wp-json/>; rel="https://api.w.org/"'}
        head = [f"<title>{html.escape(post.title)} – Fake Blog</title>"]
        if self.pingback:
            headers["X-Pingback"] = f"{self.url}/xmlrpc.php"
            head.append(f'<link rel="pingback" href="{self.url}/xmlrpc.php">')
        if self.webmention:
            endpoint = f"{self.url}/wp-json/webmention/1.0/endpoint"
            headers["Link"] += f', <{endpoint}>; rel="webmention"'
            head.append(f'<link rel="webmention" href="{endpoint}" />')
        body = (
            "<!DOCTYPE html><html><head>" + "".join(head) + "</head><body>"
            f"<article><h1>{html.escape(post.title)}</h1><p>Text.</p></article></body></html>"
        )
        return web.Response(text=body, content_type="text/html", headers=headers)

    def authorised(self, request: web.Request) -> web.Response | None:
        """None when the Basic credentials name the editor's application password."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None if request.method == "GET" else _login_required(request)
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if user != USER:
            return rest_error(401, "invalid_username", "Unknown username.")
        # WordPress strips everything but letters and digits from application passwords.
        if _squash(password) != _squash(self.password):
            return rest_error(
                401,
                "incorrect_password",
                "The provided password is an invalid application password.",
            )
        return None


class SourcePages:
    """The bridge's side in miniature: pages (linkback and comment pages) at chosen paths,
    each with a status, so a test can turn one 410."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, str]] = {}
        self.url = ""

    async def start(self, serve: Any) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._page)
        self.url = await serve(app)
        return self.url

    def put(self, path: str, body: str, status: int = 200) -> str:
        self.pages[path] = (status, body)
        return f"{self.url}{path}"

    def linking(self, path: str, title: str, target: str, text: str = "") -> str:
        """A page titled ``title`` that links ``target`` early, as the bridge's pages do."""
        body = (
            f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head><body>"
            f"<p>{html.escape(text or title)} "
            f'<a href="{html.escape(target)}">{html.escape(target)}</a></p>'
            "</body></html>"
        )
        return self.put(path, body)

    async def _page(self, request: web.Request) -> web.Response:
        found = self.pages.get(request.path)
        if found is None:
            raise web.HTTPNotFound()
        status, body = found
        if status == 410:
            return web.Response(
                status=410,
                text="<html><head><title>Gone</title></head></html>",
                content_type="text/html",
            )
        return web.Response(status=status, text=body, content_type="text/html")


def _squash(password: str) -> str:
    return "".join(ch for ch in password if ch.isalnum())


def _login_required(request: web.Request) -> web.Response:
    return rest_error(
        401, "rest_comment_login_required", "Sorry, you must be logged in to comment."
    )
