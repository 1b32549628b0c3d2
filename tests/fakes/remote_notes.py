"""Remote notes and actors as Mastodon, Misskey and GoToSocial serialise them.

The shapes follow what those servers put on the wire (Mastodon 4.x ``ActivityPub::
NoteSerializer``, Misskey 2024's ``ApRendererService``, GoToSocial 0.16): lists where one
server writes a single value, ``contentMap`` and ``_misskey_content`` where they do. The
talkabout texts are the comments under the post of the seed document.
"""

from __future__ import annotations

import html
from typing import Any

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
BRIDGE = "https://bridge.example"
BLOG_ACTOR = f"{BRIDGE}/users/talkabout"
BLOG_PROFILE = f"{BRIDGE}/@talkabout"
POST_OBJECT = f"{BLOG_ACTOR}/posts/5c1f0e7a9b2d4c3e8f10"
POST_URL = "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"

MASTODON_CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    {
        "ostatus": "http://ostatus.org#",
        "atomUri": "ostatus:atomUri",
        "inReplyToAtomUri": "ostatus:inReplyToAtomUri",
        "conversation": "ostatus:conversation",
        "sensitive": "as:sensitive",
        "toot": "http://joinmastodon.org/ns#",
        "votersCount": "toot:votersCount",
        "blurhash": "toot:blurhash",
        "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
        "Hashtag": "as:Hashtag",
    },
]

SEBASTIAN = (
    "Natürlich hätten wir dich schon Freitag gern dabei gehabt, aber wie schon gesagt, du bist "
    "für den kommenden Mittagstisch sehr willkommen. Ich hoffe, ich hab deinen Post in deinen "
    "Augen korrekt zusammen gefasst.\nDie Idee, teilhaben und teilnehmen lassen als immanente "
    "Grundbausteine von Social Media zu definieren, finde ich ein gutes Modell."
)
SEAN = (
    "Sehr guter Artikel. Habe gerade Jeff Jarvis glorifizierendes Buch “Was würde Google tun?” "
    "fertig gelesen. Neben viel Selbstbeweihräucherung enthält es auch die These, dass die neue "
    "Offenheit und Transparenz (dank Google und Social Media) zu einem versöhnlicheren Umgang "
    "miteinander führen könnte. Schön wärs. Aber ich glaube, es ist noch ein langer Weg, bis "
    "Unternehmen die neue offenen Denke leben können. Weg von Knappheit, hin zum Überfluss. Weg "
    "von Geheimniskrämerei, hin zur Transparenz. Wer kennt ein B2B-Unternehmen, dass offiziell "
    "Fehler in der Entwicklung eingesteht. Ich keins."
)
SPAM = (
    "Its unique to see a proficient to that you could find out quite several hope. Across the "
    "world in existing times, brimming with absolutely loves appearing many more what you’ll "
    "need in this particular factor. That the right tactic fortuitous Im just of having then "
    "learned this type wonderful page simply as this. It happens to be individuals such as you "
    "that leave an actual discrepancy actively past that the plans that the corporations show."
)
SPAM_LINKS = (
    "http://www.cellphonelookuped.com/",
    "http://www.cellphonelookuped.com/reverse-phone-lookup/",
)
TIMO_LINK = "http://www.indiskretionehrensache.de/tag/die-kl"
TIMO = (
    "Hallo Mirko,\n\nsehr schöner Post und in den meisten Standpunkten bin ich voll bei Dir!\n"
    "Aber was meinst du mit: „Ich freue mich, dass nicht alle sagen “alles Handwerk, alles ganz "
    "normal, alles langweilig”? Wer sagt denn so was, wenn ich fragen darf? Denn vor allem was "
    "Kommunikationsberatung bzw. PR angeht, gibt es auch jenseits von Social Media noch genug, "
    "was klar „Handwerk“ ist, aber worüber man immer (wieder) reden kann und sollte.\n\n"
    "Zwei Beispiele: Seit über 4 Jahren erkläre ich Kunden immer wieder was RSS ist und wie man "
    "es einsetzen kann, und ich glaube ich werde das auch noch ein, zwei Jahre lang machen "
    "(müssen). Für einige meiner Kunden ist RSS noch lange nicht „normal“, für mich natürlich."
)
MAURICE_LINK = "http://tinyurl.com/yalqtff"
MAURICE = (
    "Danke hierfür. Da ticken wir wohl ähnlich. Es geht ums Teilen, um Sinn und um Werte "
    "schaffen. Ich frage meine Kunden gern: “Weshalb sollen Menschen Zeit investieren, Zeit in "
    "Beschäftigung mit Dir und Deiner Marke? Boyd gibt uns einige hilfreiche Hinweise:"
)
DAVID = (
    "Habe mir eben erstmal den Podcast angehört und dann (nochmal) deinen Blogpost gelesen und "
    "kann nur zustimmen. Oft wollte auch ich etwas dazu sagen, bzw. habe mir meinen Teil dazu "
    "gedacht.\n\nIch habe festgestellt, dass ich sehr mit dir konform gehe, was “Social Media "
    "machen” angeht. Vor allem die Meinung, das der Dialog das Sahnehäubchen ist, kann ich nur "
    "unterstreichen."
)


def mastodon_link(url: str) -> str:
    """A link as Mastodon's formatter writes one (scheme hidden, long paths elided)."""
    scheme, rest = url.split("://", 1)
    shown, hidden = rest[:30], rest[30:]
    ellipsis = ' class="ellipsis"' if hidden else ""
    return (
        f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener noreferrer" '
        f'translate="no"><span class="invisible">{scheme}://</span>'
        f"<span{ellipsis}>{html.escape(shown)}</span>"
        f'<span class="invisible">{html.escape(hidden)}</span></a>'
    )


def mastodon_mention(profile: str, username: str) -> str:
    """A mention as Mastodon writes it into ``content``."""
    return (
        f'<span class="h-card" translate="no"><a href="{profile}" class="u-url mention">'
        f"@<span>{username}</span></a></span>"
    )


def paragraphs(text: str, *, extra: str = "") -> str:
    """Plain text as Mastodon's formatter renders it: paragraphs and line breaks."""
    parts = [html.escape(p).replace("\n", "<br />") for p in text.split("\n\n")]
    parts[-1] += extra
    return "".join(f"<p>{p}</p>" for p in parts)


def mastodon_actor(
    host: str,
    username: str,
    name: str,
    *,
    published: str = "2012-03-01T00:00:00Z",
    icon: str | None = "avatar.png",
) -> dict[str, Any]:
    """A Mastodon ``Person`` as served at its id."""
    actor_id = f"https://{host}/users/{username}"
    document: dict[str, Any] = {
        "@context": MASTODON_CONTEXT,
        "id": actor_id,
        "type": "Person",
        "following": f"{actor_id}/following",
        "followers": f"{actor_id}/followers",
        "inbox": f"{actor_id}/inbox",
        "outbox": f"{actor_id}/outbox",
        "featured": f"{actor_id}/collections/featured",
        "preferredUsername": username,
        "name": name,
        "summary": "<p>Kommunikation, PR, Social Media.</p>",
        "url": f"https://{host}/@{username}",
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "published": published,
        "publicKey": {
            "id": f"{actor_id}#main-key",
            "owner": actor_id,
            "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
        },
        "tag": [],
        "attachment": [{"type": "PropertyValue", "name": "Blog", "value": "<a>x</a>"}],
        "endpoints": {"sharedInbox": f"https://{host}/inbox"},
    }
    if icon:
        document["icon"] = {
            "type": "Image",
            "mediaType": "image/png",
            "url": f"https://files.{host}/accounts/avatars/000/000/001/original/{icon}",
        }
    return document


def mastodon_create(
    host: str,
    username: str,
    status_id: str,
    content: str,
    *,
    in_reply_to: str | None = POST_OBJECT,
    to: list[str] | None = None,
    cc: list[str] | None = None,
    tags: list[dict[str, Any]] | None = None,
    summary: str | None = None,
    attachment: list[dict[str, Any]] | None = None,
    kind: str = "Note",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Mastodon ``Create`` of a reply to the blog's post (public, mentioning the blog)."""
    actor_id = f"https://{host}/users/{username}"
    object_id = f"{actor_id}/statuses/{status_id}"
    to = [PUBLIC] if to is None else to
    cc = [f"{actor_id}/followers", BLOG_ACTOR] if cc is None else cc
    note: dict[str, Any] = {
        "id": object_id,
        "type": kind,
        "summary": summary,
        "inReplyTo": in_reply_to,
        "published": "2010-02-21T18:02:11Z",
        "url": f"https://{host}/@{username}/{status_id}",
        "attributedTo": actor_id,
        "to": to,
        "cc": cc,
        "sensitive": summary is not None,
        "atomUri": object_id,
        "inReplyToAtomUri": in_reply_to,
        "conversation": f"tag:{host},2010-02-21:objectId=1:objectType=Conversation",
        "content": content,
        "contentMap": {"de": content},
        "attachment": attachment or [],
        "tag": tags
        if tags is not None
        else [{"type": "Mention", "href": BLOG_ACTOR, "name": "@talkabout@bridge.example"}],
        "replies": {
            "id": f"{object_id}/replies",
            "type": "Collection",
            "first": {
                "type": "CollectionPage",
                "next": f"{object_id}/replies?only_other_accounts=true&page=true",
                "partOf": f"{object_id}/replies",
                "items": [],
            },
        },
    }
    note.update(extra or {})
    return {
        "@context": MASTODON_CONTEXT,
        "id": f"{object_id}/activity",
        "type": "Create",
        "actor": actor_id,
        "published": note["published"],
        "to": to,
        "cc": cc,
        "object": note,
    }


def talkabout_reply(
    host: str, username: str, status_id: str, text: str, *, extra: str = ""
) -> dict[str, Any]:
    """A reply to the post as Mastodon would send it: leading mention of the blog, then text."""
    mention = mastodon_mention(BLOG_PROFILE, "talkabout")
    body = paragraphs(text, extra=extra)
    content = body.replace("<p>", f"<p>{mention} ", 1)
    return mastodon_create(host, username, status_id, content)


def misskey_note(text: str, *, html_content: str | None) -> dict[str, Any]:
    """A Misskey reply (with its MFM source); ``html_content=None`` leaves ``content`` out."""
    note: dict[str, Any] = {
        "id": "https://misskey.example/notes/9tq1abcd2e",
        "type": "Note",
        "attributedTo": "https://misskey.example/users/9tq0maurice",
        "summary": None,
        "_misskey_content": f"@talkabout@bridge.example {text}",
        "source": {
            "content": f"@talkabout@bridge.example {text}",
            "mediaType": "text/x.misskeymarkdown",
        },
        "_misskey_quote": "https://misskey.example/notes/9tq0quoted",
        "quoteUrl": "https://misskey.example/notes/9tq0quoted",
        "quoteUri": "https://misskey.example/notes/9tq0quoted",
        "published": "2024-05-01T12:00:00.000Z",
        "to": [PUBLIC],
        "cc": ["https://misskey.example/users/9tq0maurice/followers", BLOG_ACTOR],
        "inReplyTo": POST_OBJECT,
        "attachment": [
            {
                "type": "Document",
                "mediaType": "image/webp",
                "url": "https://misskey.example/files/webpublic-0c9e.webp",
                "name": None,
                "sensitive": False,
            }
        ],
        "sensitive": False,
        "tag": [
            {"type": "Mention", "href": BLOG_ACTOR, "name": "@talkabout@bridge.example"},
            {
                "id": "https://misskey.example/emojis/blobcat",
                "type": "Emoji",
                "name": ":blobcat:",
                "updated": "2024-01-01T00:00:00.000Z",
                "icon": {
                    "type": "Image",
                    "mediaType": "image/png",
                    "url": "https://misskey.example/files/blobcat.png",
                },
            },
        ],
    }
    if html_content is not None:
        note["content"] = html_content
    return note


def misskey_actor() -> dict[str, Any]:
    """A Misskey ``Person``: custom emoji in the name, cat ears, icon with a null name."""
    return {
        "id": "https://misskey.example/users/9tq0maurice",
        "type": "Person",
        "inbox": "https://misskey.example/users/9tq0maurice/inbox",
        "sharedInbox": "https://misskey.example/inbox",
        "endpoints": {"sharedInbox": "https://misskey.example/inbox"},
        "url": "https://misskey.example/@mauricemorell",
        "preferredUsername": "mauricemorell",
        "name": "Maurice Morell :blobcat:",
        "summary": "<p>Marken, Sinn, Werte.</p>",
        "_misskey_summary": "Marken, Sinn, Werte.",
        "icon": {
            "type": "Image",
            "url": "https://misskey.example/files/avatar-9tq0.webp",
            "sensitive": False,
            "name": None,
        },
        "isCat": True,
        "published": "2023-11-05T09:30:00.000Z",
        "tag": [{"type": "Emoji", "name": ":blobcat:", "icon": {"url": "https://x.example/b"}}],
    }


def gotosocial_note(content: str) -> dict[str, Any]:
    """A GoToSocial reply: single values where there is one, ``contentMap``, alt text."""
    return {
        "attachment": {
            "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
            "mediaType": "image/jpeg",
            "name": "Ein Foto des Podcast-Mikrofons auf dem Schreibtisch",
            "type": "Image",
            "url": "https://gts.example/fileserver/01HX/attachment/original/01HY.jpeg",
        },
        "attributedTo": "https://gts.example/users/david_philippe",
        "cc": "https://gts.example/users/david_philippe/followers",
        "contentMap": {"de": content},
        "id": "https://gts.example/users/david_philippe/statuses/01HXYZABCD",
        "inReplyTo": {"id": POST_OBJECT, "type": "Article"},
        "interactionPolicy": {"canLike": {"always": [PUBLIC]}},
        "published": "2024-05-01T12:00:00Z",
        "replies": "https://gts.example/users/david_philippe/statuses/01HXYZABCD/replies",
        "sensitive": False,
        "summary": "",
        "tag": {"href": BLOG_ACTOR, "name": "@talkabout@bridge.example", "type": "Mention"},
        "to": PUBLIC,
        "type": "Note",
        "url": "https://gts.example/@david_philippe/statuses/01HXYZABCD",
    }
