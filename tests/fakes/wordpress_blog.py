"""A fake WordPress blog on 127.0.0.1: post pages, the REST API for posts and comments,
XML-RPC pingbacks and a webmention endpoint, with switchable failures.

Shaped after WordPress core (``WP_REST_Comments_Controller``, application passwords) and the
Webmention plugin; see :mod:`tests.fakes.wordpress_linkbacks` for the linkback receivers.
Tests read ``blog.comments`` and ``blog.requests`` and switch ``blog.down`` (503 everywhere),
``blog.rate_limited`` (that many 429 answers), ``await blog.stop()``/``start()`` (connection
refused in between; the port stays).
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from tests.fakes import wordpress_linkbacks

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
            return _rest_error(
                429, "too_many_requests", "Slow down", {"Retry-After": self.retry_after}
            )
        path = request.path
        if path == "/xmlrpc.php" and request.method == "POST" and self.pingback:
            return await wordpress_linkbacks.xmlrpc_endpoint(self, request)
        if path == "/wp-json/webmention/1.0/endpoint" and request.method == "POST":
            return await wordpress_linkbacks.webmention_endpoint(self, request)
        if path.startswith("/wp-json/wp/v2/posts"):
            return self._posts(request)
        if path.startswith("/wp-json/wp/v2/comments"):
            return await self._comments(request)
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

    def _authorised(self, request: web.Request) -> web.Response | None:
        """None when the Basic credentials name the editor's application password."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None if request.method == "GET" else _login_required(request)
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if user != USER:
            return _rest_error(401, "invalid_username", "Unknown username.")
        # WordPress strips everything but letters and digits from application passwords.
        if _squash(password) != _squash(self.password):
            return _rest_error(
                401,
                "incorrect_password",
                "The provided password is an invalid application password.",
            )
        return None

    def _posts(self, request: web.Request) -> web.Response:
        tail = request.path.removeprefix("/wp-json/wp/v2/posts").strip("/")
        if tail:
            post = self.posts.get(int(tail)) if tail.isdigit() else None
            if post is None:
                return _rest_error(404, "rest_post_invalid_id", "Invalid post ID.")
            return web.json_response(self._post_json(post))
        slug = request.query.get("slug")
        found = [p for p in self.posts.values() if slug is None or p.slug == slug]
        return web.json_response([self._post_json(p) for p in found])

    def _post_json(self, post: WPPost) -> dict[str, Any]:
        return {
            "id": post.id,
            "slug": post.slug,
            "link": self.post_link(post),
            "guid": {"rendered": f"{self.url}/?p={post.id}"},
            "comment_status": "open" if post.comments_open else "closed",
            "ping_status": "open" if post.pings_open else "closed",
        }

    async def _comments(self, request: web.Request) -> web.Response:
        denied = self._authorised(request)
        if denied is not None:
            return denied
        edit = "Authorization" in request.headers
        tail = request.path.removeprefix("/wp-json/wp/v2/comments").strip("/")
        if not tail:
            if request.method == "POST":
                return await self._create(request, edit)
            return self._list(request, edit)
        comment = self.comments.get(int(tail)) if tail.isdigit() else None
        if comment is None:
            return _rest_error(404, "rest_comment_invalid_id", "Invalid comment ID.")
        if request.method == "GET":
            return web.json_response(self._comment_json(comment, edit))
        if request.method == "DELETE":
            if request.query.get("force") in ("true", "1"):
                del self.comments[comment.id]
                return web.json_response(
                    {"deleted": True, "previous": self._comment_json(comment, edit)}
                )
            if comment.status == "trash":
                return _rest_error(
                    410, "rest_already_trashed", "The comment has already been trashed."
                )
            comment.status = "trash"
            return web.json_response(self._comment_json(comment, edit))
        if request.method in ("POST", "PUT", "PATCH"):
            data = await request.json()
            if "content" in data:
                if not str(data["content"]).strip():
                    return _rest_error(
                        400, "rest_comment_content_invalid", "Invalid comment content."
                    )
                comment.content = str(data["content"])
            for key in ("author_name", "author_url", "author_email", "date_gmt"):
                if key in data:
                    setattr(comment, key, str(data[key]))
            self._update_meta(comment, data.get("meta"))
            return web.json_response(self._comment_json(comment, edit))
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST", "DELETE"])

    async def _create(self, request: web.Request, edit: bool) -> web.Response:
        data = await request.json()
        if data.get("type") not in (None, "", "comment"):
            return _rest_error(
                400, "rest_invalid_comment_type", "Cannot create a comment with that type."
            )
        post = self.posts.get(int(data.get("post", 0) or 0))
        if post is None:
            return _rest_error(
                403,
                "rest_comment_invalid_post_id",
                "Sorry, you are not allowed to create this comment without a post.",
            )
        if not post.comments_open:
            return _rest_error(
                403, "rest_comment_closed", "Sorry, comments are closed for this item."
            )
        parent = int(data.get("parent", 0) or 0)
        if parent and (parent not in self.comments or self.comments[parent].post != post.id):
            return _rest_error(400, "rest_comment_invalid_parent", "Invalid parent comment.")
        content = str(data.get("content", "")).strip()
        if not content:
            return _rest_error(400, "rest_comment_content_invalid", "Invalid comment content.")
        name, email = str(data.get("author_name", "")), str(data.get("author_email", ""))
        if self.require_name_email and not (name and email):
            return _rest_error(
                400,
                "rest_comment_author_data_required",
                "Creating a comment requires valid author name and email values.",
            )
        for other in self.comments.values():
            if (
                other.post == post.id
                and other.status != "trash"
                and other.parent == parent
                and (other.author_name == name or (email and other.author_email == email))
                and other.content == content
            ):
                return _rest_error(
                    409,
                    "comment_duplicate",
                    "Duplicate comment detected; it looks as though you&#8217;ve already said that!",  # noqa: E501
                )
        comment = self.add_comment(
            post=post.id,
            parent=parent,
            author_name=name,
            author_email=email,
            author_url=str(data.get("author_url", "")),
            content=content,
            date_gmt=str(data.get("date_gmt") or NOW.strftime("%Y-%m-%dT%H:%M:%S")),
            agent=request.headers.get("User-Agent", ""),
        )
        self._update_meta(comment, data.get("meta"))
        location = f"{self.url}/wp-json/wp/v2/comments/{comment.id}"
        return web.json_response(
            self._comment_json(comment, edit), status=201, headers={"Location": location}
        )

    def _list(self, request: web.Request, edit: bool) -> web.Response:
        query = request.query
        status = query.get("status", "approve")
        if status != "approve" and not edit:
            return _rest_error(401, "rest_forbidden_param", "Query parameter not permitted: status")
        wanted = {"approve": "approved", "hold": "hold", "trash": "trash"}.get(status)
        found = [
            c
            for c in self.comments.values()
            if ("post" not in query or str(c.post) == query["post"])
            and ("parent" not in query or str(c.parent) == query["parent"])
            and c.type == query.get("type", "comment")
            and ((status == "all" and c.status != "trash") or c.status == wanted)
        ]
        found.sort(key=lambda c: c.id, reverse=query.get("order", "desc") == "desc")
        per_page, page = int(query.get("per_page", 10)), int(query.get("page", 1))
        chunk = found[(page - 1) * per_page : page * per_page]
        pages = max(1, -(-len(found) // per_page))
        headers = {"X-WP-Total": str(len(found)), "X-WP-TotalPages": str(pages)}
        return web.json_response([self._comment_json(c, edit) for c in chunk], headers=headers)

    def _update_meta(self, comment: WPComment, meta: Any) -> None:
        # Unregistered keys are ignored without complaint, as WP_REST_Meta_Fields does.
        if isinstance(meta, dict):
            for key, value in meta.items():
                if key in self.registered_meta:
                    comment.meta[key] = value

    def _comment_json(self, comment: WPComment, edit: bool) -> dict[str, Any]:
        digest = hashlib.md5(comment.author_email.strip().lower().encode()).hexdigest()
        data: dict[str, Any] = {
            "id": comment.id,
            "post": comment.post,
            "parent": comment.parent,
            "author": 0,
            "author_name": comment.author_name,
            "author_url": comment.author_url,
            "date_gmt": comment.date_gmt,
            "content": {"rendered": comment.content},
            "link": self.comment_link(comment),
            "status": comment.status,
            "type": comment.type,
            "author_avatar_urls": {
                size: f"https://secure.gravatar.com/avatar/{digest}?s={size}&d=mm&r=g"
                for size in ("24", "48", "96")
            },
            "meta": {key: comment.meta.get(key, "") for key in self.registered_meta},
        }
        if edit:
            data["author_email"] = comment.author_email
            data["author_user_agent"] = comment.agent
            data["content"]["raw"] = comment.content
        return data


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
    return _rest_error(
        401, "rest_comment_login_required", "Sorry, you must be logged in to comment."
    )


def _rest_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"code": code, "message": message, "data": {"status": status}}
    return web.json_response(body, status=status, headers=headers)
