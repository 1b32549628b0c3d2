"""Acceptance: the talkabout blog becomes @talkabout@host, end to end through the real command.

The fixture feed is served by a local aiohttp server; `feedfed blogs add` and `feedfed serve`
run as subprocesses on a real SQLite file; everything is checked over HTTP as a fediverse
server and a browser would see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.conftest import TALKABOUT
from tests.fakes.process import feedfed_env, free_port, run_feedfed, running_bridge

AS_JSON = "application/activity+json"
LD_JSON = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PLAEDOYER = (
    "Ein Plädoyer für die Mitteilung: Mit. Anderen. Teilen. "
    "Oder: Teilhaben lassen als Kern von Social Media."
)
DIALOG = "Es braucht keinen “Dialog” für erfolgreiche Social Media"


def feed_app() -> web.Application:
    body = (TALKABOUT / "feed.rss").read_bytes()

    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/rss+xml", charset="utf-8")

    app = web.Application()
    app.router.add_get("/feed/", feed)
    return app


async def get_json(session: aiohttp.ClientSession, url: str, accept: str = AS_JSON) -> Any:
    async with session.get(url, headers={"Accept": accept}) as resp:
        assert resp.status == 200, (url, resp.status, await resp.text())
        assert resp.content_type in (
            "application/activity+json",
            "application/jrd+json",
            "application/ld+json",
            "application/json",
        )
        return await resp.json(content_type=None)


async def test_talkabout_becomes_a_fediverse_account(
    tmp_path: Path, serve: Callable[[web.Application], Awaitable[str]]
) -> None:
    feed_base = await serve(feed_app())
    port = free_port()
    env = feedfed_env(tmp_path, port)
    domain = f"127.0.0.1:{port}"

    status, out = await run_feedfed(env, "blogs", "add", f"{feed_base}/feed/")
    assert status == 0, out
    assert f"@talkabout@{domain}" in out
    assert "2 new" in out

    status, out = await run_feedfed(env, "blogs", "show", "talkabout")
    assert status == 0, out
    assert "ok" in out and f"{feed_base}/feed/" in out

    async with running_bridge(env) as base, aiohttp.ClientSession() as http:
        finger = await get_json(
            http, f"{base}/.well-known/webfinger?resource=acct:talkabout@{domain}", "*/*"
        )
        assert finger["subject"] == f"acct:talkabout@{domain}"
        self_links = [link for link in finger["links"] if link["rel"] == "self"]
        assert self_links[0]["type"] == AS_JSON
        actor_url = self_links[0]["href"]

        actor = await get_json(http, actor_url, LD_JSON)
        assert actor["id"] == actor_url
        assert "https://w3id.org/security/v1" in actor["@context"]
        assert actor["preferredUsername"] == "talkabout"
        assert actor["name"] == "talkabout"
        assert "Kommunikation, PR und Social Media" in actor["summary"]
        assert (
            actor["icon"]["url"] == "http://www.talkabout.de/wp-content/uploads/talkabout-logo.png"
        )
        assert actor["publicKey"]["owner"] == actor_url
        assert actor["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
        assert actor["endpoints"]["sharedInbox"] == f"{base}/inbox"

        outbox = await get_json(http, actor["outbox"])
        assert outbox["type"] == "OrderedCollection"
        assert outbox["totalItems"] == 2
        page = await get_json(http, outbox["first"])
        creates = page["orderedItems"]
        assert [c["type"] for c in creates] == ["Create", "Create"]
        first, second = (c["object"] for c in creates)
        assert [first["type"], second["type"]] == ["Article", "Article"]
        assert first["name"] == PLAEDOYER
        assert second["name"] == DIALOG
        assert "regelmäßig stattfindenes" in first["content"]
        assert "“Mittagstisch”" in first["content"]
        assert first["contentMap"]["de"] == first["content"]
        assert first["url"] == "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"
        images = [a for a in first["attachment"] if a["type"] == "Image"]
        assert images[0]["url"] == "http://www.talkabout.de/wp-content/uploads/2010/02/handwerk.jpg"
        assert images[0]["name"] == "cc gholzer, Flickr"
        assert {t["name"] for t in first["tag"] if t["type"] == "Hashtag"} == {
            "#SocialMedia",
            "#PR",
            "#Dialog",
        }
        assert first["published"].startswith("2010-02-21T16:53:00")

        # The object is served at its own id, with the same content.
        assert (await get_json(http, first["id"]))["name"] == PLAEDOYER

        featured = await get_json(http, actor["featured"])
        assert featured["totalItems"] == 2

        async with http.get(actor_url, headers={"Accept": BROWSER}) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            html = await resp.text()
        assert "Ein Plädoyer für die Mitteilung" in html
        assert "“Dialog”" in html or "&#8220;Dialog&#8221;" in html
        assert f"@talkabout@{domain}" in html

        # The operator's view: Prometheus metrics and health of the running bridge.
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 200
            metrics = await resp.text()
        assert 'feedfed_blogs{feed_status="ok"} 1.0' in metrics
        assert 'route="/users/{handle}"' in metrics
        async with http.get(f"{base}/readyz") as resp:
            assert resp.status == 200
