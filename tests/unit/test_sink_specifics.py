"""What only one sink does: pingback faults as WordPress raises them, webmention status URLs,
WordPress post lookup by permalink, flood control and likes as marked comments."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from bridge.errors import Rejected, RetryLater
from bridge.sinks.access import BlogAccess, hosts_of
from bridge.sinks.base import SinkComment, SinkLinkback
from bridge.sinks.pingback import PingbackSink, read_answer
from bridge.sinks.webmention import WebmentionSink
from bridge.sinks.wordpress import WordPressSink, author_email
from tests.fakes.wordpress_blog import APP_PASSWORD, USER, FakeWordPressBlog, SourcePages

Serve = Callable[[web.Application], Awaitable[str]]
WHEN = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)


@pytest.fixture
async def blog(http: aiohttp.ClientSession) -> AsyncIterator[FakeWordPressBlog]:
    fake = FakeWordPressBlog(http)
    await fake.start()
    fake.add_post(1234, "ein-pladoyer", "Ein Plädoyer")
    yield fake
    await fake.stop()


@pytest.fixture
async def pages(serve: Serve) -> SourcePages:
    source = SourcePages()
    await source.start(serve)
    return source


def access(http: aiohttp.ClientSession, blog: FakeWordPressBlog) -> BlogAccess:
    return BlogAccess(http, hosts_of(blog.url), timeout=2.0, clock=lambda: WHEN)


def linkback(source: str, target: str) -> SinkLinkback:
    return SinkLinkback(
        kind="boost",
        activity_id="https://social.test/a/1",
        source_url=source,
        target_url=target,
        title="Jens Nirschl hat geteilt",
        actor_name="Jens Nirschl",
        actor_url="https://social.test/@jens",
        published=WHEN,
    )


async def test_pingback_faults_map_to_failure_kinds(
    http: aiohttp.ClientSession, blog: FakeWordPressBlog, pages: SourcePages
) -> None:
    sink = PingbackSink(access(http, blog))
    target = f"{blog.url}/ein-pladoyer/"
    no_link = pages.put("/nolink", "<html><head><title>T</title></head><body>x</body></html>")
    with pytest.raises(Rejected, match="fault 17"):
        await sink.send_linkback(linkback(no_link, target))
    with pytest.raises(RetryLater, match="fault 16"):
        await sink.send_linkback(linkback(pages.put("/empty", ""), target))
    with pytest.raises(Rejected, match="fault 32"):
        await sink.send_linkback(linkback(f"{pages.url}/404-page-without-title", target))
    blog.posts[1234].pings_open = False
    ok = pages.linking("/ok", "Jens", target)
    with pytest.raises(Rejected, match="fault 33"):
        await sink.send_linkback(linkback(ok, target))
    blog.posts[1234].pings_open = True
    assert (await sink.send_linkback(linkback(ok, target))).note.startswith("Pingback from")
    again = await sink.send_linkback(linkback(ok, target))
    assert again.note == "pingback already registered"


async def test_pingback_link_beyond_150_kb_is_not_seen(
    http: aiohttp.ClientSession, blog: FakeWordPressBlog, pages: SourcePages
) -> None:
    target = f"{blog.url}/ein-pladoyer/"
    late = pages.put(
        "/late",
        "<html><head><title>T</title></head><body><p>"
        + "x" * 160_000
        + f'</p><p><a href="{target}">hier</a></p></body></html>',
    )
    with pytest.raises(Rejected, match="fault 17"):
        await PingbackSink(access(http, blog)).send_linkback(linkback(late, target))


def test_garbage_instead_of_xml_rpc_is_rejected() -> None:
    with pytest.raises(Rejected, match="not an XML-RPC answer"):
        read_answer(b"<html>oops</html>", "ping")


async def test_webmention_202_keeps_the_status_url(
    http: aiohttp.ClientSession, blog: FakeWordPressBlog, pages: SourcePages
) -> None:
    blog.webmention_async = True
    target = f"{blog.url}/ein-pladoyer/"
    source = pages.linking("/lb", "Jens", target)
    result = await WebmentionSink(access(http, blog)).send_linkback(linkback(source, target))
    comment = blog.webmention_from(1234, source)
    assert comment is not None
    assert result.remote_id == f"{blog.url}/wp-json/webmention/1.0/status/{comment.id}"


async def test_webmention_refused_source_is_rejected_with_the_reason(
    http: aiohttp.ClientSession, blog: FakeWordPressBlog, pages: SourcePages
) -> None:
    target = f"{blog.url}/ein-pladoyer/"
    source = pages.put("/nolink", "<html><body>nothing</body></html>")
    with pytest.raises(Rejected, match="target_not_found"):
        await WebmentionSink(access(http, blog)).send_linkback(linkback(source, target))


def wp(http: aiohttp.ClientSession, blog: FakeWordPressBlog, **kw: bool) -> WordPressSink:
    return WordPressSink(access(http, blog), f"{blog.url}/wp-json", USER, APP_PASSWORD, **kw)


def comment(post_url: str, guid: str) -> SinkComment:
    return SinkComment(
        object_id="https://social.test/notes/1",
        post_url=post_url,
        post_guid=guid,
        author_name="Maurice",
        author_url="https://social.test/@maurice",
        content_html="<p>Hallo</p>",
        published=WHEN,
        page_url="http://127.0.0.1:1/c/1",
    )


async def test_post_found_by_permalink_once(
    http: aiohttp.ClientSession, blog: FakeWordPressBlog
) -> None:
    sink = wp(http, blog)
    post_url = f"{blog.url}/ein-pladoyer/"
    await sink.publish_comment(comment(post_url, "urn:uuid:no-post-id"))
    await sink.publish_comment(
        comment(post_url, "urn:uuid:no-post-id").__class__(
            **{**comment(post_url, "x").__dict__, "object_id": "o2", "content_html": "<p>2</p>"}
        )
    )
    lookups = [r for r in blog.requests if r[1].startswith("/wp-json/wp/v2/posts")]
    assert len(lookups) == 1
    assert {c.post for c in blog.comments.values()} == {1234}
    with pytest.raises(Rejected, match="no post"):
        await sink.publish_comment(comment(f"{blog.url}/gibt-es-nicht/", "urn:x"))


async def test_author_gets_a_stable_undeliverable_address(
    http: aiohttp.ClientSession, blog: FakeWordPressBlog
) -> None:
    await wp(http, blog).publish_comment(comment(f"{blog.url}/?p=1234", f"{blog.url}/?p=1234"))
    stored = next(iter(blog.comments.values()))
    assert stored.author_email == author_email("https://social.test/@maurice")
    assert stored.author_email.endswith("@feedfed.invalid")


async def test_comment_flood_waits(http: aiohttp.ClientSession, serve: Serve) -> None:
    async def flood(request: web.Request) -> web.Response:
        body = {"code": "comment_flood", "message": "You are posting comments too quickly."}
        return web.json_response(body, status=400)

    app = web.Application()
    app.router.add_post("/wp-json/wp/v2/comments", flood)
    base = await serve(app)
    sink = WordPressSink(
        BlogAccess(http, hosts_of(base), timeout=2.0), f"{base}/wp-json", USER, APP_PASSWORD
    )
    with pytest.raises(RetryLater) as caught:
        await sink.publish_comment(comment(f"{base}/?p=1", f"{base}/?p=1"))
    assert caught.value.retry_after == 60.0


async def test_linkbacks_without_pingback_or_comments_are_rejected(
    http: aiohttp.ClientSession, blog: FakeWordPressBlog
) -> None:
    sink = wp(http, blog)
    assert not sink.capabilities.linkbacks
    target = f"{blog.url}/ein-pladoyer/"
    with pytest.raises(Rejected, match="linkbacks need"):
        await sink.send_linkback(linkback("http://127.0.0.1:1/l", target))
