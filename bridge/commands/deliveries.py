"""``feedfed deliveries …``: how the outgoing queue stands, and a second chance for dead jobs.

* ``deliveries status [--dead N]``: queue depth by kind and state (with the oldest due time),
  hosts that are failing or marked unavailable, and the newest dead jobs with their last
  status and error;
* ``deliveries retry [--kind KIND] [--host HOST]``: queue every dead job (of one kind) again
  with a fresh attempt count; ``--host`` also forgets a host's failures, so its waiting
  deliveries go out again although it has not been heard from.

The running bridge's workers pick requeued jobs up within ``limits.job_poll_interval``.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from bridge.context import BridgeContext
from bridge.errors import ConfigError
from bridge.federation.outbound import host_of
from bridge.store.base import HostStatus, Job, JobCount


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``deliveries`` commands to the ``feedfed`` parser."""
    deliveries = sub.add_parser("deliveries", help="the outgoing queue: status and retries")
    commands = deliveries.add_subparsers(dest="deliveries_command", required=True)
    status = commands.add_parser("status", help="queue depth, failing hosts, dead jobs")
    status.add_argument(
        "--dead", type=int, default=20, metavar="N", help="how many dead jobs to show (20)"
    )
    status.set_defaults(action=lambda a: lambda ctx: show_status(ctx, a.dead))
    retry = commands.add_parser("retry", help="queue dead jobs again")
    retry.add_argument("--kind", help="only jobs of this kind (deliver, fanout, inbound)")
    retry.add_argument("--host", help="also forget this host's failures (name[:port] or URL)")
    retry.set_defaults(action=lambda a: lambda ctx: retry_dead(ctx, a.kind, a.host))


async def show_status(ctx: BridgeContext, dead: int = 20) -> int:
    """Print the queue, the failing hosts and the newest dead jobs."""
    counts = await ctx.store.job_counts()
    print("queue")
    if not counts:
        print("  empty")
    for line in queue_lines(counts):
        print(f"  {line}")
    hosts = await ctx.store.list_hosts(failing_only=True)
    print("failing hosts")
    if not hosts:
        print("  none")
    for line in host_lines(hosts):
        print(f"  {line}")
    jobs = await ctx.store.list_jobs("dead", limit=max(dead, 0)) if dead > 0 else []
    total_dead = sum(count.count for count in counts if count.state == "dead")
    print(f"dead jobs ({total_dead}; newest first)" if total_dead else "dead jobs")
    if not jobs:
        print("  none")
    for line in dead_lines(jobs):
        print(f"  {line}")
    if total_dead:
        print("requeue them with: feedfed deliveries retry")
    return 0


async def retry_dead(ctx: BridgeContext, kind: str | None, host: str | None) -> int:
    """Queue dead jobs again (and forget a host's failures when asked)."""
    now = ctx.clock()
    if host is not None:
        name = host_of(host) if "://" in host else host.strip().lower()
        if not name:
            raise ConfigError("--host", "give a host name, host:port or a URL on the host")
        known = await ctx.store.get_host(name)
        if known is None or not (known.failures or known.unavailable):
            print(f"{name}: no failures known")
        else:
            await ctx.store.record_host_success(name, now)
            print(f"{name}: {known.failures} failures forgotten, its deliveries go out again")
    requeued = await ctx.store.requeue_dead(now, kind)
    what = f"dead {kind} jobs" if kind else "dead jobs"
    print(f"{requeued} {what} queued again" if requeued else f"no {what} to retry")
    return 0


def queue_lines(counts: list[JobCount]) -> list[str]:
    """One line per kind: its jobs by state, and when the oldest queued one is due."""
    kinds: dict[str, dict[str, JobCount]] = {}
    for count in counts:
        kinds.setdefault(count.kind, {})[count.state] = count
    lines = []
    width = max((len(kind) for kind in kinds), default=0)
    for kind, states in sorted(kinds.items()):
        parts = [
            f"{state} {states[state].count}"
            for state in ("queued", "running", "dead", "done")
            if state in states
        ]
        queued = states.get("queued")
        if queued is not None and queued.oldest_run_at is not None:
            parts.append(f"oldest due {_when(queued.oldest_run_at)}")
        lines.append(f"{kind:<{width}}  " + ", ".join(parts))
    return lines


def host_lines(hosts: list[HostStatus]) -> list[str]:
    """One line per failing host: failures, since when, and whether it is skipped."""
    lines = []
    for host in hosts:
        state = "UNAVAILABLE (skipped until heard from)" if host.unavailable else "failing"
        lines.append(
            f"{host.host}  {state}, {host.failures} failures since "
            f"{_when(host.first_failure_at)}, last {_when(host.last_failure_at)}, "
            f"last success {_when(host.last_success_at)}"
        )
    return lines


def dead_lines(jobs: list[Job]) -> list[str]:
    """One line per dead job: what it was for and how it ended (never the payload)."""
    lines = []
    for job in jobs:
        target = job.payload.get("inbox") if job.kind == "deliver" else None
        about = job.payload.get("activity_id") or _activity_id(job)
        detail = " ".join(
            part
            for part in (
                f"to {target}" if isinstance(target, str) else None,
                f"activity {about}" if isinstance(about, str) else None,
            )
            if part
        )
        lines.append(
            f"#{job.id} {job.kind} {detail} after {job.attempts} attempts, "
            f"last status {job.last_status if job.last_status is not None else '-'} "
            f"at {_when(job.updated_at)}: {(job.last_error or '-')[:200]}"
        )
    return lines


def _activity_id(job: Job) -> str | None:
    activity = job.payload.get("activity")
    if isinstance(activity, dict) and isinstance(activity.get("id"), str):
        return str(activity["id"])
    return None


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"
