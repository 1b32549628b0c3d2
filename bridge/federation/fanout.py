"""Fan-out: one outgoing activity becomes one ``deliver`` job per follower inbox.

A ``fanout`` job (payload ``{"blog_id", "activity_id", "after"}``) handles one page of the
blog's delivery inboxes (followers collapsed onto shared inboxes, sorted, keyset-paginated
from ``after``): it enqueues a ``deliver`` job per inbox and, when the page was full, the
``fanout`` job of the next page, all in one transaction. So:

* memory stays flat however many followers a blog has (one page at a time);
* every job is short, and progress is durable: a process killed mid-fan-out resumes at the
  page it was on;
* re-running a page enqueues nothing twice (each delivery's dedupe key is activity + inbox);
* a page's deliveries are enqueued host after host in turns (:func:`interleave_hosts`), so
  the deliveries running at any moment go to many hosts rather than a few.

Inboxes on hosts marked unavailable are skipped, as Mastodon skips them: a server that has
failed every delivery for a week is not sent new work until it is heard from again.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from bridge.context import BridgeContext
from bridge.errors import Rejected, UnsupportedURL
from bridge.federation.delivery import deliver_key
from bridge.federation.outbound import host_of
from bridge.jobs import DELIVER, FANOUT
from bridge.store.base import Job, NewJob

log = logging.getLogger(__name__)

PAGE_SIZE = 1000


def fanout_job(blog_id: int, activity_id: str, after: str = "") -> NewJob:
    """The fan-out of ``activity_id`` from inbox ``after`` on (``""``: from the start)."""
    key = f"{FANOUT}:{activity_id}" + (f":{after}" if after else "")
    return NewJob(
        FANOUT, {"blog_id": blog_id, "activity_id": activity_id, "after": after}, dedupe_key=key
    )


async def run_fanout(ctx: BridgeContext, job: Job, page_size: int = PAGE_SIZE) -> None:
    """Enqueue the deliveries of one page of inboxes, and the next page's fan-out."""
    blog_id, activity_id, after = _payload(job.payload)
    activity = await ctx.store.get_activity(activity_id)
    if activity is None or activity.blog_id != blog_id:
        raise Rejected(f"activity {activity_id} is not in the outbox of blog {blog_id}")
    blog = await ctx.store.get_blog_by_id(blog_id)
    if blog is None:
        raise Rejected(f"blog {blog_id} no longer exists")
    inboxes = await ctx.store.delivery_inboxes(blog_id, after, page_size)
    unavailable = {host.host for host in await ctx.store.list_hosts() if host.unavailable}
    jobs: list[NewJob] = []
    skipped = 0
    for inbox in inboxes:
        try:
            host = host_of(inbox)
        except UnsupportedURL:
            log.warning("follower inbox %r of %s is no usable URL: skipped", inbox, blog.handle)
            continue
        if host in unavailable:
            skipped += 1
            continue
        payload: dict[str, Any] = {"blog": blog.handle, "inbox": inbox, "activity_id": activity_id}
        jobs.append(NewJob(DELIVER, payload, dedupe_key=deliver_key(activity_id, inbox), host=host))
    jobs = interleave_hosts(jobs)
    if len(inboxes) == page_size:
        jobs.append(fanout_job(blog_id, activity_id, inboxes[-1]))
    added = await ctx.store.enqueue(jobs, ctx.clock())  # one transaction: all or nothing
    ctx.jobs_ready.set()
    log.info(
        "fan-out of %s from %r: %d inboxes, %d jobs added, %d on unavailable hosts skipped",
        activity_id,
        after,
        len(inboxes),
        added,
        skipped,
    )


def interleave_hosts(jobs: list[NewJob]) -> list[NewJob]:
    """The jobs in turns, one host after the other (each host's own jobs in their order).

    The queue hands jobs out in the order they were enqueued, and a page of inboxes sorted
    by URL puts each host's inboxes next to each other: claimed in that order, a few hosts
    would take every slot up to their limit, each over several connections, while the
    others wait. In turns, concurrent deliveries go to different hosts, and each host gets
    its deliveries one after the other over the connection it already has.
    """
    by_host: dict[str | None, deque[NewJob]] = {}
    for job in jobs:
        by_host.setdefault(job.host, deque()).append(job)
    turns: list[NewJob] = []
    queues = list(by_host.values())
    while queues:
        for queue in queues:
            turns.append(queue.popleft())
        queues = [queue for queue in queues if queue]
    return turns


def _payload(payload: dict[str, Any]) -> tuple[int, str, str]:
    blog_id, activity_id = payload.get("blog_id"), payload.get("activity_id")
    after = payload.get("after", "")
    if (
        not isinstance(blog_id, int)
        or not isinstance(activity_id, str)
        or not isinstance(after, str)
    ):
        raise Rejected("a fan-out job needs blog_id, activity_id and after")
    return blog_id, activity_id, after
