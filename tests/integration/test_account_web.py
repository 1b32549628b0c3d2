"""A blog's fediverse account on the web: WebFinger, NodeInfo, actor, posts, collections, pages.

Every test talks HTTP to a real aiohttp server on 127.0.0.1, backed by a real SQLite file
seeded with the talkabout fixture (parsed by the real parser) and, where paging matters,
with a blog of 45 generated posts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from bridge.activitypub import keys, nodeinfo, webfinger
from bridge.activitypub.urls import Urls, entry_slug
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.entries import FeedEntry, FeedMeta
from bridge.ingest.parse import parse_feed
from bridge.store.base import Blog, KeyPair, NewActivity, NewBlog
from bridge.store.sqlite import SQLiteStore
from bridge.web import pages
from bridge.web import routes as ap_routes
from tests.conftest import TALKABOUT, FakeClock, make_config

AP = "application/activity+json"
LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FEED_URL = "http://www.talkabout.de/feed/"
PLAEDOYER = (
    "Ein Plädoyer für die Mitteilung: Mit. Anderen. Teilen. Oder: Teilhaben lassen als Kern "
    "von Social Media."
)
DIALOG = "Es braucht keinen “Dialog” für erfolgreiche Social Media"


@pytest.fixture(scope="module")
def keypair() -> KeyPair:
    """One RSA key for the whole module: generating one per test would dominate run time."""
    from datetime import UTC, datetime

    return keys.generate_keypair("talkabout", datetime(2026, 1, 1, tzinfo=UTC))


@dataclass
class Site:
    base: str
    ctx: BridgeContext
    http: aiohttp.ClientSession
    blog: Blog

    @property
    def domain(self) -> str:
        return self.ctx.config.domain

    async def get(
        self, path: str, accept: str | None = None, **kwargs: Any
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        headers = {"Accept": accept} if accept else {}
        url = path if path.startswith("http") else self.base + path
        async with self.http.get(url, headers=headers, allow_redirects=False, **kwargs) as response:
            return response, await response.read()

    async def json(self, path: str, accept: str = AP, status: int = 200) -> dict[str, Any]:
        response, body = await self.get(path, accept)
        assert response.status == status, body
        document: dict[str, Any] = json.loads(body)
        return document

    async def add_blog(self, handle: str, meta: FeedMeta | None = None) -> Blog:
        store = self.ctx.store
        blog = await store.add_blog(
            NewBlog(handle, f"http://blog.invalid/{handle}/feed"), self.ctx.clock()
        )
        if meta is not None:
            await store.update_blog_meta(blog.id, meta)
        found = await store.get_blog(handle)
        assert found is not None
        return found


@pytest.fixture
async def site(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    clock: FakeClock,
    serve: Callable[[web.Application], Awaitable[str]],
    keypair: KeyPair,
) -> Site:
    placeholder = make_config()
    ctx = BridgeContext(
        config=placeholder,
        store=sqlite_store,
        http=http,
        remote=http,
        urls=Urls(placeholder.base_url),
        clock=clock,
    )
    app = web.Application()
    app[CONTEXT] = ctx
    for table in (webfinger.routes, nodeinfo.routes, ap_routes.routes, pages.routes):
        app.add_routes(table)
    base = await serve(app)
    # Ids must carry the server's real address, known only once it listens.
    ctx.config = make_config(base, limits={"page_size": 20, "featured_count": 5})
    ctx.urls = Urls(ctx.config.base_url)

    parsed = parse_feed((TALKABOUT / "feed.rss").read_bytes(), url=FEED_URL)
    blog = await sqlite_store.add_blog(NewBlog("talkabout", FEED_URL), clock())
    await sqlite_store.update_blog_meta(blog.id, parsed.meta)
    for entry in parsed.entries:
        await sqlite_store.save_entry(blog.id, entry, entry_slug(entry.id), clock())
    await sqlite_store.put_keypair_if_absent(keypair)
    await sqlite_store.put_keypair_if_absent(replace(keypair, owner=keys.INSTANCE_OWNER))
    refreshed = await sqlite_store.get_blog("talkabout")
    assert refreshed is not None
    return Site(base=base, ctx=ctx, http=http, blog=refreshed)


def slug_of(entry_id: str) -> str:
    return entry_slug(entry_id)


async def seed_many(site: Site, count: int) -> Blog:
    """A blog with ``count`` posts, post 0 the oldest, one hour apart, the newest an hour ago."""
    blog = await site.add_blog("many", FeedMeta(title="Many posts", language="en"))
    now = site.ctx.clock()
    for number in range(count):
        entry = FeedEntry(
            id=f"http://blog.invalid/many/{number}",
            link=f"http://blog.invalid/many/{number}",
            title=f"Post {number}",
            content_html=f"<p>Body {number}</p>",
            published=now - timedelta(hours=count - number),
        )
        await site.ctx.store.save_entry(blog.id, entry, slug_of(entry.id), now)
    return blog


# -- WebFinger and host-meta ----------------------------------------------------------------


async def test_webfinger_by_acct(site: Site) -> None:
    response, body = await site.get(f"/.well-known/webfinger?resource=acct:talkabout@{site.domain}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/jrd+json; charset=utf-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    jrd = json.loads(body)
    actor = f"{site.base}/users/talkabout"
    profile = f"{site.base}/@talkabout"
    assert jrd["subject"] == f"acct:talkabout@{site.domain}"
    assert jrd["aliases"] == [profile, actor]
    links = {link["rel"]: link for link in jrd["links"]}
    assert links["self"] == {"rel": "self", "type": AP, "href": actor}
    assert links["http://webfinger.net/rel/profile-page"]["href"] == profile
    assert links["http://webfinger.net/rel/profile-page"]["type"] == "text/html"
    template = links["http://ostatus.org/schema/1.0/subscribe"]["template"]
    assert template == f"{site.base}/authorize_interaction?uri={{uri}}"
    assert links["http://webfinger.net/rel/avatar"] == {
        "rel": "http://webfinger.net/rel/avatar",
        "href": "http://www.talkabout.de/wp-content/uploads/talkabout-logo.png",
        "type": "image/png",
    }


@pytest.mark.parametrize(
    "resource",
    [
        "acct:TalkAbout@{domain}",
        "acct:@talkabout@{domain}",
        "@talkabout@{domain}",
        "talkabout@{domain}",
        "ACCT:talkabout@{domain}",
        "{base}/users/talkabout",
        "{base}/@talkabout",
    ],
)
async def test_webfinger_resource_forms(site: Site, resource: str) -> None:
    query = resource.format(domain=site.domain, base=site.base)
    response, body = await site.get("/.well-known/webfinger", params={"resource": query})
    assert response.status == 200, body
    assert json.loads(body)["subject"] == f"acct:talkabout@{site.domain}"


@pytest.mark.parametrize(
    ("resource", "status"),
    [
        ("acct:nobody@{domain}", 404),
        ("acct:talkabout@other.example", 404),
        ("https://other.example/users/talkabout", 404),
        ("{base}/users/nobody", 404),
        ("{base}/somewhere/else", 404),
        ("mailto:talkabout@{domain}", 404),
        ("acct:talkabout", 400),
        ("acct:@{domain}", 400),
        ("justtext", 400),
        ("", 400),
        (None, 400),
    ],
)
async def test_webfinger_refusals(site: Site, resource: str | None, status: int) -> None:
    params = (
        {}
        if resource is None
        else {"resource": resource.format(domain=site.domain, base=site.base)}
    )
    response, body = await site.get("/.well-known/webfinger", params=params)
    assert response.status == status
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "error" in json.loads(body)


async def test_webfinger_rel_filter(site: Site) -> None:
    response, body = await site.get(
        "/.well-known/webfinger",
        params=[("resource", f"acct:talkabout@{site.domain}"), ("rel", "self")],
    )
    assert response.status == 200
    assert [link["rel"] for link in json.loads(body)["links"]] == ["self"]


async def test_webfinger_instance_actor(site: Site) -> None:
    for resource in (f"acct:{site.domain}@{site.domain}", f"{site.base}/actor"):
        response, body = await site.get("/.well-known/webfinger", params={"resource": resource})
        assert response.status == 200
        jrd = json.loads(body)
        assert jrd["subject"] == f"acct:{site.domain}@{site.domain}"
        self_link = next(link for link in jrd["links"] if link["rel"] == "self")
        assert self_link["href"] == f"{site.base}/actor"


async def test_host_meta(site: Site) -> None:
    response, body = await site.get("/.well-known/host-meta")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/xrd+xml")
    text = body.decode()
    assert 'xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0"' in text
    assert f'template="{site.base}/.well-known/webfinger?resource={{uri}}"' in text
    response, body = await site.get("/.well-known/host-meta.json")
    assert json.loads(body)["links"][0]["template"] == (
        f"{site.base}/.well-known/webfinger?resource={{uri}}"
    )


# -- NodeInfo -------------------------------------------------------------------------------


async def test_nodeinfo_discovery_and_document(site: Site) -> None:
    discovery = await site.json("/.well-known/nodeinfo")
    hrefs = {link["rel"].rsplit("/", 1)[1]: link["href"] for link in discovery["links"]}
    assert hrefs == {"2.1": f"{site.base}/nodeinfo/2.1", "2.0": f"{site.base}/nodeinfo/2.0"}

    await seed_many(site, 3)
    response, body = await site.get(hrefs["2.1"])
    assert response.status == 200
    assert response.headers["Content-Type"] == (
        'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"; '
        "charset=utf-8"
    )
    document = json.loads(body)
    assert document["version"] == "2.1"
    assert document["software"]["name"] == "feedfed"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", document["software"]["version"])
    assert document["protocols"] == ["activitypub"]
    assert document["services"] == {"inbound": ["atom1.0", "rss2.0"], "outbound": []}
    assert document["openRegistrations"] is False
    # talkabout last posted in 2010; "many" posted within the hour.
    assert document["usage"] == {
        "users": {"total": 2, "activeMonth": 1, "activeHalfyear": 1},
        "localPosts": 5,
    }
    assert document["metadata"] == {"nodeName": site.domain}

    old = await site.json("/nodeinfo/2.0")
    assert old["version"] == "2.0"
    assert set(old["software"]) == {"name", "version"}


# -- actors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [AP, LD, f"text/html;q=0.9, {AP}"])
async def test_actor_json(site: Site, accept: str, keypair: KeyPair) -> None:
    response, body = await site.get("/users/talkabout", accept)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/activity+json; charset=utf-8"
    assert response.headers["Vary"] == "Accept"
    actor = json.loads(body)
    assert actor["id"] == f"{site.base}/users/talkabout"
    assert actor["type"] == "Service"
    assert actor["name"] == "talkabout"
    assert actor["url"] == f"{site.base}/@talkabout"
    assert actor["publicKey"]["publicKeyPem"] == keypair.public_pem
    serialization.load_pem_public_key(actor["publicKey"]["publicKeyPem"].encode())
    assert "https://w3id.org/security/v1" in actor["@context"]


async def test_actor_for_browsers_redirects_to_profile(site: Site) -> None:
    response, _ = await site.get("/users/talkabout", BROWSER)
    assert response.status == 302
    assert response.headers["Location"] == f"{site.base}/@talkabout"
    assert response.headers["Vary"] == "Accept"


async def test_actor_key_is_made_on_first_use(site: Site) -> None:
    fresh = await site.add_blog("fresh")
    assert await site.ctx.store.get_keypair("fresh") is None
    actor = await site.json("/users/fresh")
    stored = await site.ctx.store.get_keypair(fresh.handle)
    assert stored is not None
    assert actor["publicKey"]["publicKeyPem"] == stored.public_pem


async def test_profile_url_serves_actor_json_to_servers(site: Site) -> None:
    actor = await site.json("/@talkabout", LD)
    assert actor["id"] == f"{site.base}/users/talkabout"


async def test_unknown_handle(site: Site) -> None:
    for path in ("/users/nobody", "/users/nobody/outbox", "/users/nobody/posts/abc", "/@nobody"):
        response, body = await site.get(path, AP)
        assert response.status == 404, path
        assert json.loads(body) == {"error": "no such account"}
        assert response.headers["Vary"] == "Accept"
        response, body = await site.get(path, BROWSER)
        assert response.status == 404, path
        assert response.headers["Content-Type"].startswith("text/html")
        assert b"Not found" in body


async def test_instance_actor(site: Site, keypair: KeyPair) -> None:
    actor = await site.json("/actor")
    assert actor["type"] == "Application"
    assert actor["id"] == f"{site.base}/actor"
    assert actor["preferredUsername"] == site.domain
    assert actor["manuallyApprovesFollowers"] is True
    assert actor["publicKey"]["id"] == f"{site.base}/actor#main-key"
    assert actor["publicKey"]["publicKeyPem"] == keypair.public_pem
    outbox = await site.json(actor["outbox"])
    assert outbox["totalItems"] == 0
    response, _ = await site.get("/actor", BROWSER)
    assert (response.status, response.headers["Location"]) == (302, f"{site.base}/")


async def test_head_works_where_get_does(site: Site) -> None:
    async with site.http.head(
        f"{site.base}/users/talkabout", headers={"Accept": AP}, allow_redirects=False
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith(AP)
        assert await response.read() == b""


# -- posts and activities ---------------------------------------------------------------------


async def test_object_json_is_utf8(site: Site) -> None:
    path = f"/users/talkabout/posts/{slug_of('http://www.talkabout.de/?p=1234')}"
    response, body = await site.get(path, AP)
    assert response.status == 200
    assert response.headers["Vary"] == "Accept"
    assert PLAEDOYER.encode("utf-8") in body
    assert b"\\u" not in body
    article = json.loads(body)
    assert article["@context"][0] == "https://www.w3.org/ns/activitystreams"
    assert article["id"] == site.base + path
    assert article["type"] == "Article"
    assert article["name"] == PLAEDOYER
    assert article["attributedTo"] == f"{site.base}/users/talkabout"
    assert article["url"] == "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"


async def test_object_for_browsers_redirects_to_the_blog_post(site: Site) -> None:
    path = f"/users/talkabout/posts/{slug_of('http://www.talkabout.de/?p=1201')}"
    response, _ = await site.get(path, BROWSER)
    assert response.status == 302
    assert response.headers["Location"] == "http://www.talkabout.de/es-braucht-keinen-dialog/"


async def test_unknown_post(site: Site) -> None:
    response, body = await site.get("/users/talkabout/posts/0123456789abcdef0123", AP)
    assert response.status == 404
    assert json.loads(body) == {"error": "no such post"}


async def test_create_at_object_activity_url(site: Site) -> None:
    object_path = f"/users/talkabout/posts/{slug_of('http://www.talkabout.de/?p=1201')}"
    create = await site.json(object_path + "/activity")
    assert create["id"] == f"{site.base}{object_path}/activity"
    assert create["type"] == "Create"
    assert create["actor"] == f"{site.base}/users/talkabout"
    assert create["object"]["id"] == site.base + object_path
    assert create["object"]["name"] == DIALOG
    assert "@context" not in create["object"]


async def test_deleted_entry_is_a_tombstone(site: Site) -> None:
    entry_id = "http://www.talkabout.de/?p=1201"
    await site.ctx.store.mark_entry_deleted(site.blog.id, entry_id, site.ctx.clock())
    path = f"/users/talkabout/posts/{slug_of(entry_id)}"
    tombstone = await site.json(path, status=410)
    assert tombstone["type"] == "Tombstone"
    assert tombstone["id"] == site.base + path
    assert tombstone["@context"][0] == "https://www.w3.org/ns/activitystreams"
    gone = await site.json(path + "/activity", status=410)
    assert gone["type"] == "Tombstone"
    response, body = await site.get(path, BROWSER)
    assert response.status == 410
    assert b"removed" in body
    outbox = await site.json("/users/talkabout/outbox")
    assert outbox["totalItems"] == 1


async def test_recorded_activity(site: Site) -> None:
    activity_id = f"{site.base}/users/talkabout/activities/0b7e4d5a-77f1-4c0e-9a57-1f0c2b8e3c11"
    payload = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": activity_id,
        "type": "Update",
        "actor": f"{site.base}/users/talkabout",
        "object": {"id": "x", "type": "Article", "name": "Grüße"},
    }
    await site.ctx.store.add_activity(
        NewActivity(
            site.blog.id, activity_id, "Update", "http://www.talkabout.de/?p=1234", payload, True
        ),
        site.ctx.clock(),
    )
    response, body = await site.get(activity_id, AP)
    assert response.status == 200
    assert json.loads(body) == payload
    assert "Grüße".encode() in body
    response, _ = await site.get(activity_id.replace("0b7e", "ffff"), AP)
    assert response.status == 404
    other = await site.add_blog("other")
    response, _ = await site.get(activity_id.replace("/talkabout/", f"/{other.handle}/"), AP)
    assert response.status == 404


# -- collections ------------------------------------------------------------------------------


async def test_outbox_paging(site: Site) -> None:
    await seed_many(site, 45)
    outbox_id = f"{site.base}/users/many/outbox"
    summary = await site.json("/users/many/outbox")
    assert summary["id"] == outbox_id
    assert summary["type"] == "OrderedCollection"
    assert summary["totalItems"] == 45
    assert summary["first"] == f"{outbox_id}?page=1"
    assert summary["last"] == f"{outbox_id}?page=3"

    seen: list[str] = []
    url: str | None = summary["first"]
    pages_seen = 0
    while url is not None:
        page = await site.json(url)
        pages_seen += 1
        assert page["type"] == "OrderedCollectionPage"
        assert page["partOf"] == outbox_id
        assert page.get("prev") == (
            f"{outbox_id}?page={pages_seen - 1}" if pages_seen > 1 else None
        )
        for item in page["orderedItems"]:
            assert item["type"] == "Create"
            assert "@context" not in item
            assert item["id"] == item["object"]["id"] + "/activity"
            seen.append(item["object"]["name"])
        url = page.get("next")
    assert pages_seen == 3
    assert seen == [f"Post {number}" for number in range(44, -1, -1)]

    third = await site.json(f"{outbox_id}?page=3")
    assert len(third["orderedItems"]) == 5
    assert third["startIndex"] == 40
    beyond = await site.json(f"{outbox_id}?page=4")
    assert beyond["orderedItems"] == []
    for bad in ("0", "-1", "x", "99999999999999999999"):
        response, _ = await site.get(f"{outbox_id}?page={bad}", AP)
        assert response.status == 400, bad


async def test_outbox_for_browsers(site: Site) -> None:
    response, _ = await site.get("/users/talkabout/outbox", BROWSER)
    assert (response.status, response.headers["Location"]) == (302, f"{site.base}/@talkabout")


async def test_featured_holds_the_five_newest(site: Site) -> None:
    await seed_many(site, 8)
    featured = await site.json("/users/many/featured")
    assert featured["id"] == f"{site.base}/users/many/featured"
    assert featured["type"] == "OrderedCollection"
    assert featured["totalItems"] == 5
    names = [item["name"] for item in featured["orderedItems"]]
    assert names == ["Post 7", "Post 6", "Post 5", "Post 4", "Post 3"]
    assert all("@context" not in item for item in featured["orderedItems"])
    assert featured["orderedItems"][0]["type"] == "Article"


async def test_followers_and_following_are_empty(site: Site) -> None:
    for name in ("followers", "following"):
        collection = await site.json(f"/users/talkabout/{name}")
        assert collection["id"] == f"{site.base}/users/talkabout/{name}"
        assert collection["type"] == "OrderedCollection"
        assert collection["totalItems"] == 0
        page = await site.json(f"/users/talkabout/{name}?page=1")
        assert page["orderedItems"] == []
        assert "next" not in page


# -- HTML ---------------------------------------------------------------------------------------


async def test_profile_page(site: Site) -> None:
    response, body = await site.get("/@talkabout", BROWSER)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Vary"] == "Accept"
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = body.decode("utf-8")
    assert PLAEDOYER in page
    assert DIALOG in page
    assert page.index(PLAEDOYER) < page.index(DIALOG)
    assert f"@talkabout@{site.domain}" in page
    assert "Kommunikation, PR und Social Media" in page
    assert 'href="http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"' in page
    assert 'href="http://www.talkabout.de"' in page
    assert 'src="http://www.talkabout.de/wp-content/uploads/talkabout-logo.png"' in page
    assert (
        f'<link rel="alternate" type="application/activity+json" '
        f'href="{site.base}/users/talkabout">'
    ) in page
    assert 'lang="de"' in page
    assert 'datetime="2010-02-21T16:53:00+00:00"' in page
    assert "Der Kern von Social Media ist nicht der Dialog." in page
    assert re.search(r"<dt>Followers</dt><dd>0</dd>", page)


async def test_profile_page_escapes_hostile_titles(site: Site) -> None:
    entry = FeedEntry(
        id="http://www.talkabout.de/?p=666",
        link="javascript:alert(1)",
        title='<script>alert("pwned")</script> & Co',
        summary_html="<p>Text <script>alert(2)</script>nach dem Skript</p>",
        published=site.ctx.clock(),
    )
    await site.ctx.store.save_entry(site.blog.id, entry, slug_of(entry.id), site.ctx.clock())
    await site.ctx.store.update_blog_meta(
        site.blog.id, FeedMeta(title="<b>talk</b>", description='"><script>x</script>')
    )
    _, body = await site.get("/@talkabout", BROWSER)
    page = body.decode()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; Co" in page
    assert "&lt;b&gt;talk&lt;/b&gt;" in page
    assert "javascript:" not in page
    assert "Text nach dem Skript" in page


async def test_profile_page_paging_and_canonical_handle(site: Site) -> None:
    await seed_many(site, 45)
    _, body = await site.get("/@many", BROWSER)
    first = body.decode()
    assert "Post 44" in first and "Post 25" in first and "Post 24" not in first
    assert f'href="{site.base}/@many?page=2"' in first
    _, body = await site.get("/@many?page=3", BROWSER)
    last = body.decode()
    assert "Post 4<" in last and "Post 0<" in last and "Post 5<" not in last
    assert f'href="{site.base}/@many?page=2"' in last
    response, _ = await site.get("/@many?page=4", BROWSER)
    assert response.status == 404
    response, _ = await site.get("/@many?page=zero", BROWSER)
    assert response.status == 400
    assert response.headers["Vary"] == "Accept"
    response, _ = await site.get("/@Many", BROWSER)
    assert (response.status, response.headers["Location"]) == (301, f"{site.base}/@many")


async def test_index_lists_blogs(site: Site) -> None:
    await seed_many(site, 2)
    response, body = await site.get("/", BROWSER)
    assert response.status == 200
    page = body.decode()
    assert f'href="{site.base}/@talkabout"' in page
    assert f'href="{site.base}/@many"' in page
    assert "Many posts" in page
    assert f"@many@{site.domain}" in page


async def test_stylesheet(site: Site) -> None:
    response, body = await site.get("/static/style.css")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert b":root" in body


async def test_authorize_interaction(site: Site) -> None:
    response, _ = await site.get(
        "/authorize_interaction", BROWSER, params={"uri": f"acct:talkabout@{site.domain}"}
    )
    assert (response.status, response.headers["Location"]) == (302, f"{site.base}/@talkabout")
    response, body = await site.get(
        "/authorize_interaction", BROWSER, params={"uri": "https://mastodon.example/@someone"}
    )
    assert response.status == 404
    assert b"cannot follow" in body
    response, _ = await site.get("/authorize_interaction", BROWSER)
    assert response.status == 400
