"""Processing of stored inbound activities: the job kind ``"inbound"``.

The inbox verified and stored each activity; :func:`process_inbound` runs the handler for its
type, looked up in :data:`HANDLERS` (``Undo`` by the type of what it undoes, in
:data:`UNDO_HANDLERS`). Supporting a new type is one line in a table. Types without a handler
are marked ``ignored``, so nothing is lost: a later version can replay them.

How processing ends is recorded on the inbound row: ``processed``; ``ignored`` with the
reason; ``failed`` with the error when retrying cannot help (the job is buried too); still
``received`` with the last error while a transient failure (an unreachable actor) is retried
by the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from bridge.context import BridgeContext
from bridge.errors import (
    ActivityIgnored,
    Rejected,
    RemoteConnectionError,
    RemoteFetchError,
    RemoteHTTPError,
    RemoteTimeout,
    RetryLater,
)
from bridge.federation import follows, reactions, replies
from bridge.store.base import InboundActivity, InboundState, Job

log = logging.getLogger(__name__)

Handler = Callable[[BridgeContext, InboundActivity], Awaitable[str]]
"""Does what an activity asks; returns a note for the log, or raises ActivityIgnored."""


async def undo(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """Route an Undo by the type of the activity it undoes.

    An Undo that names its activity only by id is offered to each handler in turn; the first
    that knows the activity takes it.
    """
    undone = inbound.payload.get("object")
    if isinstance(undone, Mapping):
        kind = undone.get("type")
        handler = UNDO_HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise ActivityIgnored(f"Undo of {str(kind)[:60]} is not handled")
        return await handler(ctx, inbound)
    reasons = []
    for kind, handler in UNDO_HANDLERS.items():
        try:
            return await handler(ctx, inbound)
        except ActivityIgnored as reason:
            reasons.append(f"{kind}: {reason}")
    raise ActivityIgnored("; ".join(reasons) or "Undo of an unknown activity")


HANDLERS: Mapping[str, Handler] = {
    "Follow": follows.on_follow,
    "Undo": undo,
    "Reject": follows.on_reject,
    "Delete": replies.on_delete,
    "Move": follows.on_move,
    "Create": replies.on_create,
    "Update": replies.on_update,
    "Like": reactions.on_like,
    "EmojiReact": reactions.on_emoji_react,
    "Announce": reactions.on_announce,
}
"""Activity type → handler."""

UNDO_HANDLERS: Mapping[str, Handler] = {
    "Follow": follows.on_undo_follow,
    "Like": reactions.on_undo_like,
    "Announce": reactions.on_undo_announce,
    "EmojiReact": reactions.on_undo_emoji_react,
}
"""Type of the undone activity → handler of its Undo."""


async def process_inbound(ctx: BridgeContext, job: Job) -> None:
    """The job handler for kind ``"inbound"``: payload ``{"inbound_id": <id>}``.

    Raises :class:`~bridge.errors.RetryLater` when a remote server could not be reached and
    :class:`~bridge.errors.Rejected` when the job can never succeed.
    """
    inbound_id = job.payload.get("inbound_id")
    if not isinstance(inbound_id, int) or isinstance(inbound_id, bool):
        raise Rejected(f"job {job.id} names no inbound activity")
    inbound = await ctx.store.get_inbound(inbound_id)
    if inbound is None:
        raise Rejected(f"inbound activity {inbound_id} does not exist")
    if inbound.state in ("processed", "ignored", "failed"):
        # The job ran before and died after recording its outcome: nothing left to do.
        return
    handler = HANDLERS.get(inbound.type)
    try:
        if handler is None:
            raise ActivityIgnored(f"{inbound.type[:60]} is not handled")
        note = await handler(ctx, inbound)
    except ActivityIgnored as reason:
        await ctx.store.mark_inbound(inbound.id, "ignored", str(reason))
        _log(inbound, "ignored", str(reason))
        return
    except RemoteFetchError as error:
        verdict = job_verdict(error)
        state: InboundState = "failed" if isinstance(verdict, Rejected) else "received"
        await ctx.store.mark_inbound(inbound.id, state, str(error))
        _log(inbound, state, str(error))
        raise verdict from error
    await ctx.store.mark_inbound(inbound.id, "processed")
    _log(inbound, "processed", note)


def job_verdict(error: RemoteFetchError) -> RetryLater | Rejected:
    """Whether a failed fetch is worth retrying: timeouts, transport errors, 5xx, 408, 429."""
    status = error.status if isinstance(error, RemoteHTTPError) else None
    transient = isinstance(error, RemoteTimeout | RemoteConnectionError) or (
        status is not None and (status >= 500 or status in (408, 429))
    )
    if transient:
        return RetryLater(str(error), status)
    return Rejected(str(error), status)


def _log(inbound: InboundActivity, state: str, note: str) -> None:
    log.info(
        "inbound %d %s id=%s actor=%s: %s: %s",
        inbound.id,
        inbound.type[:60],
        inbound.activity_id[:300],
        inbound.actor_id[:300],
        state,
        note,
    )
