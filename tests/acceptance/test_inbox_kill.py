"""Replies keep arriving while ``feedfed serve`` (one process, on SQLite and on PostgreSQL) is
killed with SIGKILL three times, each time after a different stretch of work: once it runs
again, every reply it answered ``202`` is exactly one comment, and no inbound job is left
waiting or dead. On PostgreSQL each life of the process has its own worker id, so what a
killed one held waits for its lease (2 s here) before the next life takes it over. A reply
the bridge accepted is never lost, whenever the process dies; one whose answer was cut off by
the kill may or may not be there (its sender would send it again, and the second copy would
be recognised by its id).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.instance import FakeInstance
from tests.fakes.instance_actors import FakeActor
from tests.fakes.postgres import fresh_schema, postgres_url
from tests.fakes.process_blog import bridge_env, comment_ids, inbound_jobs, reply, seed
from tests.fakes.process_roles import feedfed, sigterm, wait_http

KILLS = 3
SENDERS = 6
CONFIG = """
[limits]
# A killed process's jobs come back once their lease ends (PostgreSQL; on SQLite the next
# life of the process takes them back at once).
job_lease_seconds = 2
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'feedfed.db'}"
        return
    async with fresh_schema(postgres_url()) as url:
        yield url


class Replies:
    """Replies to one article, each with its own text, noting the ids answered 202."""

    def __init__(
        self,
        instance: FakeInstance,
        inbox: str,
        article: str,
        numbers: Iterator[int],
        accepted: set[str],
    ) -> None:
        self.instance, self.inbox, self.article = instance, inbox, article
        self.numbers, self.accepted = numbers, accepted

    async def keep(self, reader: FakeActor, sending: asyncio.Event) -> None:
        """Send ``reader``'s replies one after another while ``sending`` is set."""
        while sending.is_set():
            activity = reply(reader, self.article, f"Antwort {next(self.numbers)}")
            try:
                status, _ = await self.instance.send(reader, self.inbox, activity)
            except aiohttp.ClientError:
                await asyncio.sleep(0.01)  # the bridge is gone: not accepted
                continue
            if status == 202:
                self.accepted.add(activity["object"]["id"])


async def test_every_reply_answered_202_is_one_comment_after_the_process_is_killed(
    tmp_path: Path, database_url: str
) -> None:
    env = bridge_env(tmp_path, CONFIG, database_url)
    article = await seed(env)
    base = env["FEEDFED_BASE_URL"]
    accepted: set[str] = set()
    numbers = itertools.count(1)
    before_kill: list[int] = []
    async with FakeInstance("127.0.0.1") as instance:
        readers = [instance.add_actor(f"reader{n}") for n in range(SENDERS)]
        replies = Replies(instance, f"{base}/inbox", article, numbers, accepted)
        for kill in range(KILLS):
            log = tmp_path / f"serve-{kill}.log"
            async with feedfed(env, log, "serve") as proc:
                await wait_http(f"{base}/healthz", proc, log)
                sending = asyncio.Event()
                sending.set()
                senders = [asyncio.create_task(replies.keep(r, sending)) for r in readers]
                # Killed while replies arrive and earlier ones are being made into comments.
                await asyncio.sleep(0.3 + 0.4 * kill)
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                sending.clear()
                await asyncio.gather(*senders)
            before_kill.append(len(accepted))

        # Each kill fell amid traffic: replies were accepted in each life of the process.
        assert all(b > a for a, b in zip([0, *before_kill], before_kill, strict=False))
        log = tmp_path / "serve-last.log"
        async with feedfed(env, log, "serve") as proc:
            await wait_http(f"{base}/healthz", proc, log)
            for _ in range(800):
                jobs = await inbound_jobs(env)
                if not jobs.get("queued") and not jobs.get("running"):
                    break
                await asyncio.sleep(0.05)
            assert await sigterm(proc) == 0

    assert not jobs.get("dead"), jobs
    ids = await comment_ids(env)
    assert accepted <= set(ids), f"lost: {sorted(accepted - set(ids))[:5]}"
    assert [i for i, n in Counter(ids).items() if n > 1] == []
