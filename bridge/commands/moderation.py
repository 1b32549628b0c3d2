"""``feedfed moderation …``, ``feedfed blocklist import`` and ``feedfed threads refresh``.

* ``moderation list [BLOG] [--state held|spam|duplicate|published|rejected]``: the queue
  (held, spam and duplicate comments unless ``--state`` is given), oldest first, with the
  score and the reasons;
* ``moderation approve OBJECT_ID`` publishes a comment, ``moderation reject OBJECT_ID``
  rejects it (it leaves every feed and page);
* ``moderation block ACTOR_OR_DOMAIN [--reason TEXT]``: an actor URL blocks that account, a
  domain (or a bare host) blocks that server and its subdomains; either way their comments
  are deleted, their likes and boosts withdrawn and their follows ended, so deliveries to
  them stop too;
* ``blocklist import FILE [--dry-run]``: a Mastodon domain-block export, the IFTAS DNI list
  or a plain list of domains; ``suspend`` rows block, ``silence`` rows limit (the server's
  comments are held for review);
* ``threads refresh POST``: fetch the replies a post's known comments received (see
  :mod:`bridge.federation.thread_refresh`); POST is the post's object id or its URL.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final, get_args

from bridge.backfeed import push
from bridge.backfeed.blocklists import parse_blocklist
from bridge.backfeed.sanitize import html_to_text
from bridge.commands.blog_handle import blog_named
from bridge.commands.followers import block_domain, normalize_domain
from bridge.context import BridgeContext
from bridge.errors import BlogNotFound, CommentNotFound, ConfigError
from bridge.federation.remote_actors import host_of, is_http_url, is_local
from bridge.federation.targets import target_of
from bridge.federation.thread_refresh import refresh_thread
from bridge.store.base import (
    BlockSeverity,
    Blog,
    Comment,
    CommentState,
    FollowerState,
    ReactionKind,
)

QUEUE: Final[tuple[CommentState, ...]] = ("held", "spam", "duplicate")
LISTABLE: Final = ("held", "spam", "duplicate", "published", "rejected")
_PAGE: Final = 500
_EXCERPT: Final = 120


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``moderation``, ``blocklist`` and ``threads`` commands to the parser."""
    moderation = sub.add_parser("moderation", help="review comments; block actors and servers")
    commands = moderation.add_subparsers(dest="moderation_command", required=True)
    listing = commands.add_parser("list", help="comments waiting for review")
    listing.add_argument("blog", nargs="?", help="only this blog's (handle)")
    listing.add_argument("--state", choices=LISTABLE, help="list this state instead")
    listing.set_defaults(action=lambda a: lambda ctx: list_queue(ctx, a.blog, a.state))
    approve = commands.add_parser("approve", help="publish a comment")
    approve.add_argument("object_id", help="the comment's object id (as `list` shows)")
    approve.set_defaults(action=lambda a: lambda ctx: decide(ctx, a.object_id, "published"))
    reject = commands.add_parser("reject", help="reject a comment")
    reject.add_argument("object_id", help="the comment's object id (as `list` shows)")
    reject.set_defaults(action=lambda a: lambda ctx: decide(ctx, a.object_id, "rejected"))
    blocking = commands.add_parser("block", help="block an actor (URL) or a domain")
    blocking.add_argument("target", help="an actor URL, or a domain such as spam.example")
    blocking.add_argument("--reason", help="a note for the list")
    blocking.set_defaults(action=lambda a: lambda ctx: block(ctx, a.target, a.reason))

    blocklist = sub.add_parser("blocklist", help="import shared domain blocklists")
    lists = blocklist.add_subparsers(dest="blocklist_command", required=True)
    imports = lists.add_parser("import", help="import a CSV blocklist (Mastodon export, IFTAS)")
    imports.add_argument("file", type=Path)
    imports.add_argument("--dry-run", action="store_true", help="show what would change")
    imports.set_defaults(action=lambda a: lambda ctx: import_blocklist(ctx, a.file, a.dry_run))

    threads = sub.add_parser("threads", help="complete posts' comment threads")
    thread_commands = threads.add_subparsers(dest="threads_command", required=True)
    refreshing = thread_commands.add_parser("refresh", help="fetch the replies a post received")
    refreshing.add_argument("post", help="the post's object id or its URL on the blog")
    refreshing.set_defaults(action=lambda a: lambda ctx: refresh(ctx, a.post))


async def list_queue(ctx: BridgeContext, handle: str | None, state: str | None) -> int:
    """Print the comments in the moderation queue (or in ``state``), oldest first."""
    states: tuple[CommentState, ...] = QUEUE
    if state is not None:
        states = tuple(s for s in get_args(CommentState) if s == state)
    blogs = [await blog_named(ctx, handle)] if handle else await ctx.store.list_blogs()
    count = 0
    for blog in blogs:
        async for comment in all_comments(ctx, blog, states):
            print(comment_line(blog, comment))
            count += 1
    print(f"{count} comment{'' if count == 1 else 's'} ({', '.join(states)})")
    return 0


def comment_line(blog: Blog, comment: Comment) -> str:
    """One comment as `moderation list` prints it (tab-separated)."""
    text = html_to_text(comment.content_html)
    excerpt = text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"
    reasons = "; ".join(comment.reasons) or "-"
    return (
        f"{comment.state}\t@{blog.handle}\t{comment.object_id}\t{comment.author.handle}\t"
        f"{comment.score:g}\t{reasons}\t{excerpt}"
    )


async def decide(ctx: BridgeContext, object_id: str, state: CommentState) -> int:
    """Approve (publish) or reject one comment."""
    comment = await ctx.store.get_comment(object_id)
    if comment is None or comment.state == "deleted":
        raise CommentNotFound(f"no comment {object_id!r} (see feedfed moderation list)")
    reasons = ("approved by a moderator",) if state == "published" else ("rejected by a moderator",)
    decided = await ctx.store.set_comment_state(object_id, state, reasons)
    if decided is not None:
        action: push.PushAction = "publish" if state == "published" else "withdraw"
        await push.push_comment(ctx, decided, action, version=ctx.clock().isoformat())
    print(f"{comment.object_id}: {comment.state} → {state}")
    return 0


async def block(ctx: BridgeContext, target: str, reason: str | None) -> int:
    """Block an actor (by URL) or a domain; remove what they left behind."""
    now = ctx.clock()
    is_actor = is_http_url(target) and target.split("://", 1)[1].strip("/").count("/") > 0
    if not is_actor:
        await block_domain(ctx, target, reason)
        domain = normalize_domain(target)
        comments, reactions = await purge_domains(ctx, {domain})
        print(f"deleted {comments} comment(s), withdrew {reactions} reaction(s) from {domain}")
        return 0
    if is_local(ctx, target):
        raise ConfigError("ACTOR", f"{target} is one of this bridge's own actors")
    async with ctx.store.transaction():
        await ctx.store.block_actor(target, reason, now)
        deleted = await ctx.store.delete_comments_by_author(target, now)
        withdrawn = await ctx.store.withdraw_reactions_by_actor(target, now)
        follows = await ctx.store.follows_of_actor(target)
        blogs = await ctx.store.remove_actor_everywhere(target)
        # Posts already queued for the actor stop too, unless others on their server
        # still follow through the same shared inbox.
        cancelled = 0
        for follow in follows:
            inbox = follow.delivery_inbox
            cancelled += await ctx.store.cancel_orphaned_deliveries(follow.blog_id, inbox, now)
    await push.push_withdrawals(ctx, deleted, withdrawn)
    print(
        f"blocked {target}; deleted {len(deleted)} comment(s), withdrew {len(withdrawn)} "
        f"reaction(s), ended {len(blogs)} follow(s), cancelled {cancelled} queued delivery(ies)"
    )
    return 0


async def import_blocklist(ctx: BridgeContext, path: Path, dry_run: bool) -> int:
    """Import a CSV blocklist: block ``suspend`` rows, limit ``silence`` rows."""
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as error:
        raise ConfigError("FILE", f"cannot read {path}: {error.strerror}") from None
    blocklist = parse_blocklist(data)
    for problem in blocklist.problems:
        print(f"{path}:{problem.line}: {problem.level}: {problem.message}")
    existing = {block.domain: block for block in await ctx.store.list_domain_blocks()}
    blocked: set[str] = set()
    changed = 0
    for rule in blocklist.rules:
        severity: BlockSeverity = "block" if rule.action == "block" else "limit"
        before = existing.get(rule.domain)
        if before is not None and (before.severity == severity or before.severity == "block"):
            continue  # never soften an operator's stricter block by an import
        changed += 1
        print(f"{'would ' if dry_run else ''}{severity} {rule.domain} ({rule.severity})")
        if dry_run:
            continue
        await ctx.store.block_domain(rule.domain, rule.reason, ctx.clock(), severity)
        if severity == "block":
            blocked.add(rule.domain)
            await ctx.store.cancel_jobs_for_domain(rule.domain, ctx.clock())
    verb = "would change" if dry_run else "changed"
    print(
        f"{len(blocklist.rules)} rule(s) read, {verb} {changed}, "
        f"{len(blocklist.errors)} row(s) skipped"
    )
    if blocked:
        followers = await _drop_followers(ctx, blocked)
        comments, reactions = await purge_domains(ctx, blocked)
        print(
            f"removed {followers} follower(s), deleted {comments} comment(s), "
            f"withdrew {reactions} reaction(s) of the blocked servers"
        )
    return 1 if blocklist.errors and not blocklist.rules else 0


async def refresh(ctx: BridgeContext, post: str) -> int:
    """Fetch the replies a post's known comments received and store the new ones."""
    target = await target_of(ctx, post)
    if target is None or target.parent_id != target.article_id:
        raise BlogNotFound(f"no post {post!r} on this bridge (its object id or its URL)")
    result = await refresh_thread(ctx, target)
    for line in result.problems:
        print(f"unreadable: {line}")
    for line in result.skipped:
        print(f"skipped: {line}")
    for object_id in result.stored:
        print(f"stored: {object_id}")
    print(f"{len(result.stored)} new comment(s) on {target.article_id}")
    return 0


async def all_comments(
    ctx: BridgeContext, blog: Blog, states: tuple[CommentState, ...]
) -> AsyncIterator[Comment]:
    """Every comment of a blog in ``states``, oldest first."""
    offset = 0
    while True:
        page = await ctx.store.list_comments(
            blog.id, states=states, limit=_PAGE, offset=offset, newest_first=False
        )
        for comment in page:
            yield comment
        if len(page) < _PAGE:
            return
        offset += _PAGE


async def purge_domains(ctx: BridgeContext, domains: set[str]) -> tuple[int, int]:
    """Delete the comments and withdraw the reactions of every actor on ``domains`` (or a
    subdomain of one); the numbers deleted and withdrawn."""
    now = ctx.clock()
    actors: set[str] = set()
    live: tuple[CommentState, ...] = ("published", "held", "duplicate", "spam", "rejected")
    kinds: tuple[ReactionKind, ...] = get_args(ReactionKind)
    for blog in await ctx.store.list_blogs():
        async for comment in all_comments(ctx, blog, live):
            if covered(host_of(comment.author.actor_id), domains):
                actors.add(comment.author.actor_id)
        offset = 0
        while entries := await ctx.store.list_entries(blog.id, _PAGE, offset):
            for stored in entries:
                for kind in kinds:
                    reactions = await ctx.store.list_reactions(
                        blog.id, stored.entry_id, kind, limit=100_000
                    )
                    actors.update(
                        r.actor.actor_id
                        for r in reactions
                        if covered(host_of(r.actor.actor_id), domains)
                    )
            offset += _PAGE
    deleted = withdrawn = 0
    for actor_id in sorted(actors):
        comments = await ctx.store.delete_comments_by_author(actor_id, now)
        reactions = await ctx.store.withdraw_reactions_by_actor(actor_id, now)
        await push.push_withdrawals(ctx, comments, reactions)
        deleted, withdrawn = deleted + len(comments), withdrawn + len(reactions)
    return deleted, withdrawn


def covered(host: str, domains: set[str]) -> bool:
    """Whether ``host`` is one of ``domains`` or a subdomain of one."""
    labels = host.split(".")
    return any(".".join(labels[i:]) in domains for i in range(len(labels)))


async def _drop_followers(ctx: BridgeContext, domains: set[str]) -> int:
    states: tuple[FollowerState, ...] = ("accepted", "pending")
    dropped = 0
    for blog in await ctx.store.list_blogs():
        for state in states:
            doomed: list[str] = []
            offset = 0
            while page := await ctx.store.list_followers(blog.id, _PAGE, offset, state=state):
                doomed += [f.actor_id for f in page if covered(host_of(f.actor_id), domains)]
                offset += _PAGE
            for actor_id in doomed:
                dropped += await ctx.store.remove_follower(blog.id, actor_id)
    return dropped
