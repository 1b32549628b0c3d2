"""The WordPress sink: native comments through the REST API (``/wp/v2/comments``).

Authenticated with an application password (HTTP Basic, WordPress 5.6+); the account needs
``moderate_comments`` (an Editor) to trash comments and to list held ones. The post is found by
id from the feed guid (``?p=1234``, ``?page_id=``) or by looking its permalink up
(``/wp/v2/posts?slug=…``), cached for the sink's lifetime. Comments keep author name, URL, date
and avatar (the avatar as comment meta ``feedfed_avatar``; WordPress itself draws avatars from
the e-mail, which fediverse people do not share) and carry ``feedfed_object_id``, so the bridge
recognises its own comments when it reads the blog back. Meta keys only stick where the blog
registers them (``register_meta('comment', …, ['show_in_rest' => true])``); unregistered keys
are dropped silently by WordPress, which is why the bridge also remembers the ids it created.

WordPress requires a name and an e-mail address for comments (``require_name_email``), and the
REST API refuses any other comment ``type`` than ``comment`` (``rest_invalid_comment_type``).
So each author gets a stable address under the reserved ``.invalid`` domain (RFC 2606: never
delivered), and likes and boosts posted as comments are ordinary comments marked with the meta
``feedfed_kind`` (``like``/``repost``/``mention``). Otherwise linkbacks go as pingbacks, and a
withdrawn one is found among the post's pingbacks and trashed, which the XML-RPC protocol alone
cannot do.

Answers: 409 ``comment_duplicate`` after a retried create (its answer lost) finds the comment
made before and returns its id; 400 ``comment_flood`` waits; 410 ``rest_already_trashed`` and 404
on a withdrawal count as done; 401/403 are :class:`Rejected` (wrong password, missing role).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import UTC
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from bridge.errors import Rejected, RetryLater
from bridge.sinks.access import BlogAccess
from bridge.sinks.base import Capabilities, SinkComment, SinkLinkback, SinkResult
from bridge.sinks.failures import error_for_status, read_capped, transport_error
from bridge.sinks.pingback import PingbackSink

META_OBJECT_ID = "feedfed_object_id"
META_AVATAR = "feedfed_avatar"
META_KIND = "feedfed_kind"
EMAIL_DOMAIN = "feedfed.invalid"
# WordPress's flood check lets one author comment every 15 seconds; waiting a minute is polite.
FLOOD_WAIT = 60.0
MAX_ANSWER_BYTES = 2 * 1024 * 1024
LIST_PAGE = 100
KIND_OF_LINKBACK = {"boost": "repost", "like": "like", "mention": "mention"}


class WordPressSink:
    """Comments (threaded, editable, withdrawable) into one WordPress blog."""

    def __init__(
        self,
        access: BlogAccess,
        api_url: str,
        user: str,
        application_password: str,
        *,
        linkbacks_as_comments: bool = False,
        pingback: PingbackSink | None = None,
    ) -> None:
        self.access = access
        self.api_url = api_url.rstrip("/")
        token = base64.b64encode(f"{user}:{application_password}".encode()).decode()
        self._auth = f"Basic {token}"
        self.linkbacks_as_comments = linkbacks_as_comments
        self.pingback = pingback
        self._post_ids: dict[str, int] = {}

    @property
    def name(self) -> str:
        """``wordpress``."""
        return "wordpress"

    @property
    def capabilities(self) -> Capabilities:
        """Everything; linkbacks when posted as comments or a pingback sink is attached."""
        return Capabilities(
            comments=True,
            threading=True,
            update=True,
            delete=True,
            linkbacks=self.linkbacks_as_comments or self.pingback is not None,
        )

    async def publish_comment(self, comment: SinkComment) -> SinkResult:
        """Create the comment under its post (and parent); its WordPress id."""
        post_id = await self.post_id(comment.post_url, comment.post_guid)
        body: dict[str, Any] = {
            "post": post_id,
            "parent": int(comment.parent_remote_id) if comment.parent_remote_id else 0,
            "author_name": comment.author_name,
            "author_email": author_email(comment.author_url),
            "author_url": comment.author_url,
            "content": comment.content_html,
            "date_gmt": comment.published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "meta": {META_OBJECT_ID: comment.object_id, META_AVATAR: comment.author_avatar or ""},
        }
        return await self._create(post_id, body, comment.object_id)

    async def update_comment(self, remote_id: str, comment: SinkComment) -> SinkResult:
        """Replace text, name and URL of comment ``remote_id``."""
        body = {
            "content": comment.content_html,
            "author_name": comment.author_name,
            "author_url": comment.author_url,
            "meta": {META_OBJECT_ID: comment.object_id, META_AVATAR: comment.author_avatar or ""},
        }
        _status, data = await self._call("POST", f"/wp/v2/comments/{_numeric(remote_id)}", body)
        return SinkResult(str(data.get("id", remote_id)), str(data.get("status", "")) or None)

    async def withdraw_comment(self, remote_id: str) -> None:
        """Move comment ``remote_id`` to the trash (already trashed or gone: done)."""
        await self._call("DELETE", f"/wp/v2/comments/{_numeric(remote_id)}", None, done={404, 410})

    async def send_linkback(self, linkback: SinkLinkback) -> SinkResult:
        """A like/boost/mention: as a marked comment where configured, else as a pingback."""
        if not self.linkbacks_as_comments:
            return await self._pingback().send_linkback(linkback)
        post_id = await self.post_id(linkback.target_url, linkback.target_url)
        body: dict[str, Any] = {
            "post": post_id,
            "author_name": linkback.actor_name,
            "author_email": author_email(linkback.actor_url),
            "author_url": linkback.actor_url,
            "content": linkback.title,
            "date_gmt": linkback.published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "meta": {
                META_OBJECT_ID: linkback.activity_id,
                META_KIND: KIND_OF_LINKBACK[linkback.kind],
            },
        }
        return await self._create(post_id, body, linkback.activity_id)

    async def withdraw_linkback(self, linkback: SinkLinkback, remote_id: str | None) -> None:
        """Trash the comment or the pingback the linkback became."""
        if remote_id is not None:
            await self.withdraw_comment(remote_id)
            return
        post_id = await self.post_id(linkback.target_url, linkback.target_url)
        for item in await self._list(post_id, "pingback"):
            if item.get("author_url") == linkback.source_url:
                await self.withdraw_comment(str(item["id"]))

    async def post_id(self, post_url: str, guid: str) -> int:
        """The WordPress id of the post at ``post_url`` (from the guid, else looked up)."""
        self.access.require_own(post_url)
        for candidate in (guid, post_url):
            query = parse_qs(urlsplit(candidate).query)
            for key in ("p", "page_id"):
                value = query.get(key, [""])[0]
                if value.isdigit():
                    return int(value)
        cached = self._post_ids.get(post_url)
        if cached is not None:
            return cached
        slug = urlsplit(post_url).path.rstrip("/").rsplit("/", 1)[-1]
        if not slug:
            raise Rejected(f"{post_url}: no slug to look the post up by")
        _status, found = await self._call(
            "GET", "/wp/v2/posts", None, params={"slug": slug, "_fields": "id,link"}
        )
        posts = [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []
        wanted = _comparable(post_url)
        matches = [p for p in posts if _comparable(str(p.get("link", ""))) == wanted]
        if not matches and len(posts) == 1:
            matches = posts
        if not matches or not isinstance(matches[0].get("id"), int):
            raise Rejected(f"{post_url}: no post with slug {slug!r} in the blog")
        self._post_ids[post_url] = matches[0]["id"]
        return int(matches[0]["id"])

    def _pingback(self) -> PingbackSink:
        if self.pingback is None:
            raise Rejected("linkbacks need likes_as_comments or a pingback endpoint")
        return self.pingback

    async def _create(self, post_id: int, body: dict[str, Any], origin: str) -> SinkResult:
        status, data = await self._call("POST", "/wp/v2/comments", body, done={409})
        if status == 409:
            existing = await self._find(post_id, body, origin)
            if existing is None:
                raise Rejected(f"WordPress calls comment {origin[:200]} a duplicate of another")
            return SinkResult(str(existing["id"]), "already there")
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise Rejected("WordPress answered a created comment without an id")
        return SinkResult(str(data["id"]), str(data.get("status", "")) or None)

    async def _find(self, post_id: int, body: dict[str, Any], origin: str) -> dict[str, Any] | None:
        """The comment a lost create made: by origin meta, else by author URL and text."""
        for item in await self._list(post_id, "comment"):
            meta = item.get("meta")
            if isinstance(meta, dict) and meta.get(META_OBJECT_ID) == origin:
                return item
            content = item.get("content")
            raw = content.get("raw") if isinstance(content, dict) else None
            if item.get("author_url") == body["author_url"] and raw == body["content"]:
                return item
        return None

    async def _list(self, post_id: int, kind: str) -> list[dict[str, Any]]:
        """Every held or approved item of ``kind`` on the post, newest first."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {
                "post": str(post_id),
                "type": kind,
                "status": "all",
                "context": "edit",
                "per_page": str(LIST_PAGE),
                "page": str(page),
            }
            _status, found = await self._call("GET", "/wp/v2/comments", None, params=params)
            batch = [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []
            items.extend(batch)
            if len(batch) < LIST_PAGE:
                return items
            page += 1

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        params: dict[str, str] | None = None,
        done: frozenset[int] | set[int] = frozenset(),
    ) -> tuple[int, Any]:
        """One authenticated request; ``(status, JSON)`` for 2xx and the ``done`` statuses."""
        url = self.api_url + path
        what = f"{method} {url}"
        headers = {
            "Authorization": self._auth,
            "Accept": "application/json",
            "User-Agent": self.access.user_agent,
        }
        try:
            async with asyncio.timeout(self.access.timeout):
                async with self.access.session.request(
                    method, url, json=body, params=params, headers=headers, allow_redirects=False
                ) as response:
                    raw = await read_capped(response, MAX_ANSWER_BYTES)
                    status = response.status
                    data = _json(raw)
                    if 200 <= status < 300 or status in done:
                        return status, data
                    code = data.get("code", "") if isinstance(data, dict) else ""
                    message = data.get("message", "") if isinstance(data, dict) else ""
                    detail = f"{code}: {message}" if code else raw[:200].decode(errors="replace")
                    if code == "comment_flood":
                        raise RetryLater(f"{what}: {detail}", status=status, retry_after=FLOOD_WAIT)
                    raise error_for_status(
                        status, response.headers, what, now=self.access.clock(), detail=detail
                    )
        except aiohttp.ClientError as exc:
            raise transport_error(exc, what) from exc
        except TimeoutError as exc:
            raise RetryLater(f"{what}: no answer within {self.access.timeout:g}s") from exc


def author_email(author_url: str) -> str:
    """A stable, undeliverable address per author (WordPress insists on one)."""
    digest = hashlib.sha256(author_url.encode()).hexdigest()[:20]
    return f"{digest}@{EMAIL_DOMAIN}"


def _numeric(remote_id: str) -> str:
    if not remote_id.isdigit():
        raise Rejected(f"not a WordPress comment id: {remote_id[:100]}")
    return remote_id


def _comparable(url: str) -> str:
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}{parts.path.rstrip('/')}?{parts.query}"


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
