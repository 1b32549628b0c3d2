"""The REST API of the fake WordPress blog: ``/wp-json/wp/v2/posts`` (reads) and
``/wp-json/wp/v2/comments``, shaped after ``WP_REST_Comments_Controller``, with WordPress's
``WP_Error`` answers. Requests are authenticated by the blog (:meth:`FakeWordPressBlog.authorised`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.wordpress_blog import FakeWordPressBlog, WPComment, WPPost


def posts_endpoint(blog: FakeWordPressBlog, request: web.Request) -> web.Response:
    """``/wp-json/wp/v2/posts``: one post by id, or the posts (of a ``slug``)."""
    tail = request.path.removeprefix("/wp-json/wp/v2/posts").strip("/")
    if tail:
        post = blog.posts.get(int(tail)) if tail.isdigit() else None
        if post is None:
            return rest_error(404, "rest_post_invalid_id", "Invalid post ID.")
        return web.json_response(_post_json(blog, post))
    slug = request.query.get("slug")
    found = [p for p in blog.posts.values() if slug is None or p.slug == slug]
    return web.json_response([_post_json(blog, p) for p in found])


def _post_json(blog: FakeWordPressBlog, post: WPPost) -> dict[str, Any]:
    return {
        "id": post.id,
        "slug": post.slug,
        "link": blog.post_link(post),
        "guid": {"rendered": f"{blog.url}/?p={post.id}"},
        "comment_status": "open" if post.comments_open else "closed",
        "ping_status": "open" if post.pings_open else "closed",
    }


async def comments_endpoint(blog: FakeWordPressBlog, request: web.Request) -> web.Response:
    """``/wp-json/wp/v2/comments``: list and create; read, edit and delete one by id."""
    denied = blog.authorised(request)
    if denied is not None:
        return denied
    edit = "Authorization" in request.headers
    tail = request.path.removeprefix("/wp-json/wp/v2/comments").strip("/")
    if not tail:
        if request.method == "POST":
            return await _create(blog, request, edit)
        return _list(blog, request, edit)
    comment = blog.comments.get(int(tail)) if tail.isdigit() else None
    if comment is None:
        return rest_error(404, "rest_comment_invalid_id", "Invalid comment ID.")
    if request.method == "GET":
        return web.json_response(_comment_json(blog, comment, edit))
    if request.method == "DELETE":
        if request.query.get("force") in ("true", "1"):
            del blog.comments[comment.id]
            return web.json_response(
                {"deleted": True, "previous": _comment_json(blog, comment, edit)}
            )
        if comment.status == "trash":
            return rest_error(410, "rest_already_trashed", "The comment has already been trashed.")
        comment.status = "trash"
        return web.json_response(_comment_json(blog, comment, edit))
    if request.method in ("POST", "PUT", "PATCH"):
        data = await request.json()
        if "content" in data:
            if not str(data["content"]).strip():
                return rest_error(400, "rest_comment_content_invalid", "Invalid comment content.")
            comment.content = str(data["content"])
        for key in ("author_name", "author_url", "author_email", "date_gmt"):
            if key in data:
                setattr(comment, key, str(data[key]))
        _update_meta(blog, comment, data.get("meta"))
        return web.json_response(_comment_json(blog, comment, edit))
    raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST", "DELETE"])


async def _create(blog: FakeWordPressBlog, request: web.Request, edit: bool) -> web.Response:
    data = await request.json()
    if data.get("type") not in (None, "", "comment"):
        return rest_error(
            400, "rest_invalid_comment_type", "Cannot create a comment with that type."
        )
    post = blog.posts.get(int(data.get("post", 0) or 0))
    if post is None:
        return rest_error(
            403,
            "rest_comment_invalid_post_id",
            "Sorry, you are not allowed to create this comment without a post.",
        )
    if not post.comments_open:
        return rest_error(403, "rest_comment_closed", "Sorry, comments are closed for this item.")
    parent = int(data.get("parent", 0) or 0)
    if parent and (parent not in blog.comments or blog.comments[parent].post != post.id):
        return rest_error(400, "rest_comment_invalid_parent", "Invalid parent comment.")
    content = str(data.get("content", "")).strip()
    if not content:
        return rest_error(400, "rest_comment_content_invalid", "Invalid comment content.")
    name, email = str(data.get("author_name", "")), str(data.get("author_email", ""))
    if blog.require_name_email and not (name and email):
        return rest_error(
            400,
            "rest_comment_author_data_required",
            "Creating a comment requires valid author name and email values.",
        )
    for other in blog.comments.values():
        if (
            other.post == post.id
            and other.status != "trash"
            and other.parent == parent
            and (other.author_name == name or (email and other.author_email == email))
            and other.content == content
        ):
            return rest_error(
                409,
                "comment_duplicate",
                "Duplicate comment detected; it looks as though you&#8217;ve already said that!",
            )
    comment = blog.add_comment(
        post=post.id,
        parent=parent,
        author_name=name,
        author_email=email,
        author_url=str(data.get("author_url", "")),
        content=content,
        agent=request.headers.get("User-Agent", ""),
        # Without a date of its own the comment is dated now (the blog's clock).
        **({"date_gmt": str(data["date_gmt"])} if data.get("date_gmt") else {}),
    )
    _update_meta(blog, comment, data.get("meta"))
    location = f"{blog.url}/wp-json/wp/v2/comments/{comment.id}"
    return web.json_response(
        _comment_json(blog, comment, edit), status=201, headers={"Location": location}
    )


def _list(blog: FakeWordPressBlog, request: web.Request, edit: bool) -> web.Response:
    query = request.query
    status = query.get("status", "approve")
    if status != "approve" and not edit:
        return rest_error(401, "rest_forbidden_param", "Query parameter not permitted: status")
    wanted = {"approve": "approved", "hold": "hold", "trash": "trash"}.get(status)
    found = [
        c
        for c in blog.comments.values()
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
    return web.json_response([_comment_json(blog, c, edit) for c in chunk], headers=headers)


def _update_meta(blog: FakeWordPressBlog, comment: WPComment, meta: Any) -> None:
    # Unregistered keys are ignored without complaint, as WP_REST_Meta_Fields does.
    if isinstance(meta, dict):
        for key, value in meta.items():
            if key in blog.registered_meta:
                comment.meta[key] = value


def _comment_json(blog: FakeWordPressBlog, comment: WPComment, edit: bool) -> dict[str, Any]:
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
        "link": blog.comment_link(comment),
        "status": comment.status,
        "type": comment.type,
        "author_avatar_urls": {
            size: f"https://secure.gravatar.com/avatar/{digest}?s={size}&d=mm&r=g"
            for size in ("24", "48", "96")
        },
        "meta": {key: comment.meta.get(key, "") for key in blog.registered_meta},
    }
    if edit:
        data["author_email"] = comment.author_email
        data["author_user_agent"] = comment.agent
        data["content"]["raw"] = comment.content
    return data


def rest_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A ``WP_Error`` as the REST API answers it."""
    body = {"code": code, "message": message, "data": {"status": status}}
    return web.json_response(body, status=status, headers=headers)
