"""``feedfed serve``'s web server, from start-up to shutdown.

Not ``web.run_app``: in aiohttp 3.14 it starts the application outside its ``try``, so when a
cleanup context fails to start (a second worker refused on the same SQLite file) or a signal
interrupts start-up, the contexts that had started are never closed by it. The interpreter's
async generator finaliser then closed them at exit, in no order and racing each other
("aclose(): asynchronous generator is already running" beside the real error). Here the
runner's cleanup runs whatever happened, so started contexts close in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bridge.errors import ConfigError
from bridge.logs import AccessLogger

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve(app: web.Application, host: str, port: int) -> None:
    """Start ``app`` (its cleanup contexts), listen on ``host:port`` and serve until SIGTERM
    or SIGINT; then stop listening, finish the requests in flight and close the contexts.

    A signal during start-up abandons it (the contexts started so far are closed) and returns
    normally. A context that fails to start raises its error after the others are closed;
    an address that cannot be listened on raises :class:`ConfigError`.
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    stop = asyncio.Event()
    starting = True

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.info("%s again: still shutting down", name)
            return
        stop.set()
        if starting:
            log.info("%s during start-up: stopping", name)
            main.cancel()
        else:
            log.info("%s: shutting down", name)

    for signum in SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    runner = web.AppRunner(app, access_log_class=AccessLogger, handle_signals=False)
    try:
        try:
            await runner.setup()
            await _listen(runner, host, port)
        except asyncio.CancelledError:
            if not stop.is_set():
                raise  # not our signal: whoever cancelled gets the cancellation
            main.uncancel()
            return
        finally:
            starting = False
        log.info("listening on %s:%d", host, port)
        await stop.wait()
    finally:
        try:
            await runner.cleanup()
        finally:
            for signum in SIGNALS:
                loop.remove_signal_handler(signum)
    log.info("stopped")


async def _listen(runner: web.AppRunner, host: str, port: int) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise ConfigError("server.listen", f"cannot listen on {host}:{port}: {exc}") from exc
