"""``feedfed followers …`` and ``feedfed domains …``: who follows a blog, and who may not.

* ``followers list BLOG [--pending]``: accepted followers (or pending follow requests);
* ``followers approve BLOG ACTOR`` / ``followers reject BLOG ACTOR``: answer a follow request
  of a blog with ``manually_approves_followers`` (reject also removes an accepted follower);
* ``domains block DOMAIN [--reason TEXT]``: refuse everything from the domain and its
  subdomains (their inbox POSTs get 403) and drop the followers it has, as a Mastodon
  suspension severs follows; ``domains unblock DOMAIN``; ``domains list``.

Accept and Reject are queued here and sent by the running bridge's workers.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

from yarl import URL

from bridge.commands.blog_handle import blog_named
from bridge.context import BridgeContext
from bridge.errors import ConfigError
from bridge.federation import follows
from bridge.federation.remote_actors import host_of, is_http_url
from bridge.store.base import Blog, Follower, FollowerState

PAGE = 500


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``followers`` and ``domains`` commands to the ``feedfed`` parser."""
    followers = sub.add_parser("followers", help="list and approve a blog's followers")
    commands = followers.add_subparsers(dest="followers_command", required=True)
    listing = commands.add_parser("list", help="list a blog's followers")
    listing.add_argument("blog", help="the blog's handle")
    listing.add_argument("--pending", action="store_true", help="list follow requests instead")
    listing.set_defaults(action=lambda a: lambda ctx: list_followers(ctx, a.blog, a.pending))
    approve_parser = commands.add_parser("approve", help="accept a follow request")
    approve_parser.add_argument("blog", help="the blog's handle")
    approve_parser.add_argument(
        "actor", help="the follower's actor URL (as `followers list` shows)"
    )
    approve_parser.set_defaults(action=lambda a: lambda ctx: approve(ctx, a.blog, a.actor))
    reject_parser = commands.add_parser(
        "reject", help="refuse a follow request or remove a follower"
    )
    reject_parser.add_argument("blog", help="the blog's handle")
    reject_parser.add_argument("actor", help="the follower's actor URL (as `followers list` shows)")
    reject_parser.set_defaults(action=lambda a: lambda ctx: reject(ctx, a.blog, a.actor))

    domains = sub.add_parser("domains", help="block and unblock remote domains")
    domain_commands = domains.add_subparsers(dest="domains_command", required=True)
    block = domain_commands.add_parser(
        "block", help="refuse a domain and its subdomains, dropping their followers"
    )
    block.add_argument("domain", help="a host name such as spam.example (or a URL on it)")
    block.add_argument("--reason", help="a note for the list")
    block.set_defaults(action=lambda a: lambda ctx: block_domain(ctx, a.domain, a.reason))
    unblock = domain_commands.add_parser("unblock", help="lift a domain block")
    unblock.add_argument("domain")
    unblock.set_defaults(action=lambda a: lambda ctx: unblock_domain(ctx, a.domain))
    listing = domain_commands.add_parser("list", help="list blocked domains")
    listing.set_defaults(action=lambda a: list_domains)


async def list_followers(ctx: BridgeContext, handle: str, pending: bool) -> int:
    """Print a blog's accepted followers, or its pending follow requests."""
    blog = await blog_named(ctx, handle)
    state: FollowerState = "pending" if pending else "accepted"
    count = 0
    async for follower in _all_followers(ctx, blog, state):
        since = follower.created_at.isoformat(timespec="seconds")
        print(f"{follower.actor_id}\t{since}\t{follower.delivery_inbox}")
        count += 1
    what = "pending follow request" if pending else "follower"
    print(f"{count} {what}{'' if count == 1 else 's'} of @{blog.handle}@{ctx.config.domain}")
    return 0


async def approve(ctx: BridgeContext, handle: str, actor_id: str) -> int:
    """Accept a pending follower."""
    blog = await blog_named(ctx, handle)
    before = await ctx.store.get_follower(blog.id, actor_id)
    await follows.approve_follower(ctx, blog, actor_id)
    if before is not None and before.state == "accepted":
        print(f"{actor_id} already follows @{blog.handle}")
    else:
        print(f"approved {actor_id} as a follower of @{blog.handle}; Accept queued")
    return 0


async def reject(ctx: BridgeContext, handle: str, actor_id: str) -> int:
    """Refuse a follow request, or remove a follower."""
    blog = await blog_named(ctx, handle)
    follower = await follows.reject_follower(ctx, blog, actor_id)
    done = "removed follower" if follower.state == "accepted" else "rejected follow request of"
    print(f"{done} {actor_id} (@{blog.handle}); Reject queued")
    return 0


async def block_domain(ctx: BridgeContext, raw: str, reason: str | None) -> int:
    """Block a domain and drop the followers it has on every blog."""
    domain = normalize_domain(raw)
    await ctx.store.block_domain(domain, reason, ctx.clock())
    dropped = 0
    for blog in await ctx.store.list_blogs():
        states: tuple[FollowerState, ...] = ("accepted", "pending")
        doomed = [
            follower.actor_id
            for state in states
            async for follower in _all_followers(ctx, blog, state)
            if in_domain(host_of(follower.actor_id), domain)
        ]
        for actor_id in doomed:
            dropped += await ctx.store.remove_follower(blog.id, actor_id)
    cancelled = await ctx.store.cancel_jobs_for_domain(domain, ctx.clock())
    print(
        f"blocked {domain} and its subdomains; removed {dropped} follower(s), "
        f"cancelled {cancelled} queued job(s)"
    )
    return 0


async def unblock_domain(ctx: BridgeContext, raw: str) -> int:
    """Lift a block (followers removed by it must follow again)."""
    domain = normalize_domain(raw)
    if await ctx.store.unblock_domain(domain):
        print(f"unblocked {domain}")
        return 0
    print(f"{domain} was not blocked")
    return 1


async def list_domains(ctx: BridgeContext) -> int:
    """Print every blocked domain."""
    blocks = await ctx.store.list_domain_blocks()
    for block in blocks:
        since = block.created_at.isoformat(timespec="seconds")
        print(f"{block.domain}\t{since}\t{block.reason or '-'}")
    print(f"{len(blocks)} blocked domain{'' if len(blocks) == 1 else 's'}")
    return 0


def normalize_domain(raw: str) -> str:
    """A host name as blocks are kept: lower case, IDNA-encoded, no trailing dot.

    A URL is accepted for its host (``https://spam.example/@x`` → ``spam.example``).
    """
    text = raw.strip()
    if "://" in text:
        if not is_http_url(text):
            raise ConfigError("DOMAIN", f"{raw!r} is no http(s) URL with a host")
        text = host_of(text)
    try:
        host = URL.build(scheme="http", host=text.strip(".")).raw_host or ""
    except ValueError as error:
        raise ConfigError("DOMAIN", f"{raw!r} is no domain name: {error}") from None
    if "." not in host:
        # A single label ("com", "localhost") would block far more than anyone means to.
        raise ConfigError("DOMAIN", f"{raw!r} is no domain name with a dot")
    return host.lower().strip(".")


def in_domain(host: str, domain: str) -> bool:
    """Whether ``host`` is ``domain`` or one of its subdomains."""
    return host == domain or host.endswith("." + domain)


async def _all_followers(
    ctx: BridgeContext, blog: Blog, state: FollowerState
) -> AsyncIterator[Follower]:
    offset = 0
    while True:
        page = await ctx.store.list_followers(blog.id, PAGE, offset, state=state)
        for follower in page:
            yield follower
        if len(page) < PAGE:
            return
        offset += PAGE
