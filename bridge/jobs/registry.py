"""Which handler runs which job kind: one table for `feedfed serve` and `feedfed worker`."""

from __future__ import annotations

from collections.abc import Collection

from bridge.backfeed import pusher
from bridge.backfeed.dialog import DIALOG, run_dialog
from bridge.federation import dispatch
from bridge.federation.delivery import Deliverer
from bridge.federation.fanout import run_fanout
from bridge.jobs import DELIVER, FANOUT, INBOUND, PUSH, Handler
from bridge.logs import tag_jobs
from bridge.sinks.factory import sink_for

JOB_KINDS: tuple[str, ...] = (DELIVER, FANOUT, INBOUND, PUSH, DIALOG)


def job_handlers(kinds: Collection[str], deliverer: Deliverer | None) -> dict[str, Handler]:
    """The handlers of the chosen kinds, each logging under its job id (``deliverer`` is
    needed for ``deliver``: it holds the signing threads and caches of the process)."""
    handlers: dict[str, Handler] = {}
    if FANOUT in kinds:
        handlers[FANOUT] = run_fanout
    if DELIVER in kinds:
        if deliverer is None:
            raise ValueError("deliver jobs need a Deliverer")
        handlers[DELIVER] = deliverer
    if INBOUND in kinds:
        handlers[INBOUND] = dispatch.process_inbound
    if PUSH in kinds:
        handlers[PUSH] = pusher.make_push_handler(sink_for)
    if DIALOG in kinds:
        handlers[DIALOG] = run_dialog
    return tag_jobs(handlers)
