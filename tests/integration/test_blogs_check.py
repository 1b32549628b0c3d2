"""``feedfed blogs check BLOG`` against a fake WordPress blog on 127.0.0.1.

The fake (:mod:`tests.fakes.wordpress_blog`) serves post pages with their pingback and
webmention endpoints and the REST API; this module adds what a WordPress site also serves:
the RSS feed (``wfw:commentRss`` per item), a post's comment feed and ``users/me``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.cli import _parser
from bridge.commands.check import CheckReport, check_blog, format_report
from bridge.context import BridgeContext
from bridge.errors import BlogNotFound
from bridge.store.base import Blog, BlogSettings, NewBlog
from tests.fakes.wordpress_blog import APP_PASSWORD, USER, FakeWordPressBlog

ENV = "FEEDFED_TEST_WP_PASSWORD"


class CheckedBlog:
    """The fake WordPress blog plus its feeds and ``/wp-json/wp/v2/users/me``."""

    def __init__(self, blog: FakeWordPressBlog, *, rest: bool = True) -> None:
        self.blog = blog
        self.rest = rest
        self.post = blog.add_post(1234, "ein-pladoyer-fur-die-mitteilung", "Ein Plädoyer")
        blog.add_post(1200, "aelter", "Älter")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/feed/", self.feed)
        app.router.add_get("/{slug}/feed/", self.comment_feed)
        app.router.add_get("/wp-json/wp/v2/users/me", self.me)
        app.router.add_route("*", "/{tail:.*}", self.blog._dispatch)
        return app

    async def feed(self, request: web.Request) -> web.Response:
        items = "".join(
            f"<item><title>{post.title}</title><link>{self.blog.post_link(post)}</link>"
            f"<guid isPermaLink='false'>{self.blog.url}/?p={post.id}</guid>"
            f"<pubDate>{date}</pubDate><description>Text</description>"
            f"<wfw:commentRss>{self.blog.post_link(post)}feed/</wfw:commentRss></item>"
            for post, date in (
                (self.blog.posts[1200], "Sat, 20 Feb 2010 10:00:00 +0000"),
                (self.post, "Sun, 21 Feb 2010 16:53:00 +0000"),
            )
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:wfw="http://wellformedweb.org/CommentAPI/"><channel><title>talkabout</title>'
            f"<link>{self.blog.url}/</link><description>Blog</description>{items}</channel></rss>"
        )
        return web.Response(text=body, content_type="application/rss+xml", charset="utf-8")

    async def comment_feed(self, request: web.Request) -> web.Response:
        if request.match_info["slug"] != self.post.slug:
            raise web.HTTPNotFound()
        link = self.blog.post_link(self.post)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Kommentare zu: Ein Plädoyer</title><link>{link}</link>"
            f"<item><title>Von Kai</title><link>{link}#comment-1</link>"
            f"<guid isPermaLink='false'>{link}#comment-1</guid>"
            "<pubDate>Mon, 22 Feb 2010 10:00:00 +0000</pubDate>"
            "<description>Schön</description></item></channel></rss>"
        )
        return web.Response(text=body, content_type="application/rss+xml", charset="utf-8")

    async def me(self, request: web.Request) -> web.StreamResponse:
        if not self.rest:
            raise web.HTTPNotFound()
        if "Authorization" not in request.headers:
            return web.json_response(
                {"code": "rest_not_logged_in", "message": "You are not currently logged in."},
                status=401,
            )
        refused = self.blog.authorised(request)
        if refused is not None:
            return refused
        assert request.query.get("context") == "edit"
        return web.json_response(
            {"id": 2, "username": USER, "name": "Redaktion", "slug": USER, "roles": ["editor"]}
        )


@pytest.fixture
def start(
    http: aiohttp.ClientSession, serve: Callable[[web.Application], Any]
) -> Callable[..., Any]:
    async def started(**options: Any) -> CheckedBlog:
        rest = options.pop("rest", True)
        checked = CheckedBlog(FakeWordPressBlog(http, **options), rest=rest)
        base = await serve(checked.app())
        checked.blog.port = int(base.rsplit(":", 1)[1])
        return checked

    return started


async def add(ctx: BridgeContext, checked: CheckedBlog, **settings: Any) -> Blog:
    return await ctx.store.add_blog(
        NewBlog("talkabout", f"{checked.blog.url}/feed/", BlogSettings(**settings)), ctx.clock()
    )


def wordpress(checked: CheckedBlog) -> dict[str, Any]:
    return {
        "sink": "wordpress",
        "wordpress_url": checked.blog.url + "/",
        "wordpress_user": USER,
        "wordpress_password_env": ENV,
    }


def lines(report: CheckReport) -> dict[str, tuple[bool | None, str]]:
    return {f.topic: (f.ok, f.text) for f in report.findings}


async def test_wordpress_with_the_right_password_works(
    ctx: BridgeContext, start: Callable[..., Any]
) -> None:
    checked = await start()
    blog = await add(ctx, checked, **wordpress(checked))
    report = await check_blog(ctx, blog, env={ENV: APP_PASSWORD})
    found = lines(report)
    feed_ok, feed_text = found["feed"]
    assert feed_ok and "rss20, 2 entries" in feed_text
    post = checked.blog.post_link(checked.post)
    assert found["newest post"] == (True, post)
    assert found["comment feed"] == (True, f"{post}feed/: 1 comments")
    assert found["sink"] == (None, "wordpress (configured)")
    assert found["WordPress REST API"] == (True, "authorised as user editor (Redaktion)")
    assert found["webmention"] == (True, f"{checked.blog.url}/wp-json/webmention/1.0/endpoint")
    assert found["pingback"] == (True, f"{checked.blog.url}/xmlrpc.php")
    assert found["advice"] == (True, 'sink = "wordpress" can work')
    assert report.works and report.usable == ["wordpress", "webmention", "pingback", "feed"]
    # The check only reads: no comment, pingback or webmention reached the blog.
    assert checked.blog.comments == {}
    assert all(method == "GET" for method, _ in checked.blog.requests)


async def test_wrong_password_is_reported_with_wordpress_reason(
    ctx: BridgeContext, start: Callable[..., Any]
) -> None:
    checked = await start()
    blog = await add(ctx, checked, **wordpress(checked))
    report = await check_blog(ctx, blog, env={ENV: "wrong password"})
    ok, text = lines(report)["WordPress REST API"]
    assert not ok
    assert "401 incorrect_password" in text and "invalid application password" in text
    assert not report.works
    assert lines(report)["advice"] == (
        False,
        'sink = "wordpress" cannot work here; use sink = "webmention"',
    )


async def test_missing_environment_variable_is_named(
    ctx: BridgeContext, start: Callable[..., Any]
) -> None:
    checked = await start()
    blog = await add(ctx, checked, **wordpress(checked))
    report = await check_blog(ctx, blog, env={})
    assert lines(report)["WordPress REST API"] == (
        False,
        f"environment variable {ENV} (the application password) is unset",
    )
    assert not report.works
    assert not any(path.startswith("/wp-json/wp/v2/users") for _, path in checked.blog.requests)


async def test_plain_blog_with_only_webmention(
    ctx: BridgeContext, start: Callable[..., Any]
) -> None:
    checked = await start(pingback=False, rest=False)
    blog = await add(ctx, checked, sink="webmention")
    report = await check_blog(ctx, blog, env={})
    found = lines(report)
    assert found["WordPress REST API"] == (None, "not configured (wordpress_url)")
    assert found["webmention"][0] is True
    ok, text = found["pingback"]
    assert not ok and text.startswith("no endpoint announced by ")
    assert found["advice"] == (True, 'sink = "webmention" can work')
    assert report.usable == ["webmention", "feed"]


async def test_blog_with_nothing_advises_the_feed_sink(
    ctx: BridgeContext, start: Callable[..., Any]
) -> None:
    checked = await start(pingback=False, webmention=False, rest=False)
    blog = await add(ctx, checked, sink="pingback")
    report = await check_blog(ctx, blog, env={})
    found = lines(report)
    assert found["webmention"][0] is False and found["pingback"][0] is False
    assert found["advice"] == (False, 'sink = "pingback" cannot work here; use sink = "feed"')
    assert report.usable == ["feed"]


async def test_unreachable_feed_fails_every_sink(
    ctx: BridgeContext, start: Callable[..., Any]
) -> None:
    checked = await start()
    blog = await ctx.store.add_blog(
        NewBlog("talkabout", f"{checked.blog.url}/no-feed/", BlogSettings()), ctx.clock()
    )
    report = await check_blog(ctx, blog, env={})
    ok, text = lines(report)["feed"]
    assert not ok and "404" in text
    assert lines(report)["linkback endpoints"] == (False, "no post to look at")
    assert not report.works and report.usable == []


async def test_command_prints_the_report_and_exits_by_the_verdict(
    ctx: BridgeContext,
    start: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked = await start()
    await add(ctx, checked, **wordpress(checked))

    async def feedfed(*argv: str) -> int:
        args = _parser().parse_args(list(argv))
        return int(await args.action(args)(ctx))

    monkeypatch.setenv(ENV, APP_PASSWORD)
    assert await feedfed("blogs", "check", "@talkabout") == 0
    out = capsys.readouterr().out
    assert out.startswith("checking @talkabout\n")
    assert "WordPress REST API  ok    authorised as user editor" in out
    monkeypatch.delenv(ENV)
    assert await feedfed("blogs", "check", "talkabout") == 1
    assert "FAIL  environment variable" in capsys.readouterr().out
    with pytest.raises(BlogNotFound):
        await feedfed("blogs", "check", "nobody")


async def test_wordpress_url_without_credentials_only_serves_the_dialog(
    ctx: BridgeContext, start: Callable[..., Any]
) -> None:
    checked = await start()
    blog = await add(ctx, checked, sink="webmention", wordpress_url=checked.blog.url)
    report = await check_blog(ctx, blog, env={})
    assert lines(report)["WordPress REST API"] == (
        None,
        "wordpress_user and wordpress_password_env are not configured",
    )
    assert report.works and report.usable == ["webmention", "pingback", "feed"]


def test_report_lines_are_aligned() -> None:
    report = CheckReport("t", "feed")
    report.add("feed", True, "x")
    report.add("WordPress REST API", None, "y")
    assert format_report(report).splitlines() == [
        "checking @t",
        "feed                ok    x",
        "WordPress REST API  -     y",
    ]
