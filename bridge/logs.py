"""Logging: one line per event, plain text or JSON, tagged with request and job ids.

``setup_logging`` configures the root logger once per process (``feedfed --log-format``).
Two context variables follow the work being done: :data:`REQUEST_ID` is set by the
:func:`request_ids` middleware for the duration of a request (from the client's or the
proxy's ``X-Request-Id``, else generated, and echoed in the response), :data:`JOB_ID` by the
handlers :func:`tag_jobs` wraps for the duration of one job attempt. Every record logged
meanwhile, by any logger, carries them; :class:`AccessLogger` writes aiohttp's access log
through the same formatter, with the request id the middleware chose.

JSON lines hold ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the ids when
set, ``exception`` (the formatted traceback) when there is one, and whatever a call passed
in ``extra``; so a log shipper needs no parsing rules.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from bridge.context import BridgeContext
from bridge.jobs import Handler
from bridge.store.records import Job

LogFormat = Literal["plain", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("plain", "json")

REQUEST_ID: ContextVar[str | None] = ContextVar("feedfed_request_id", default=None)
"""The id of the HTTP request being handled, if any."""

JOB_ID: ContextVar[int | None] = ContextVar("feedfed_job_id", default=None)
"""The id of the job whose attempt is running, if any."""

REQUEST_ID_KEY = web.RequestKey("request_id", str)
"""Where the middleware leaves the request's id (the access log reads it after the fact)."""

HEADER = "X-Request-Id"
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# What a proxy may hand us as an id: UUIDs, hex, base64-ish tokens; anything else is
# dropped rather than written into log lines and headers.
_ID_CHARS = re.compile(r"[^A-Za-z0-9._:@/+=-]")
MAX_ID_LENGTH = 128

# Attributes every LogRecord has; the rest came in through ``extra`` and go into JSON lines.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "request_id",
    "job_id",
}


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``job_id`` from the context to every record (None when unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag the record; never drops it."""
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        if getattr(record, "job_id", None) is None:
            record.job_id = JOB_ID.get()
        return True


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger message request_id=… job_id=…`` (ids only when set)."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The line, with the ids appended before any traceback."""
        text = super().format(record)
        tags = "".join(
            f" {name}={value}"
            for name in ("request_id", "job_id")
            if (value := getattr(record, name, None)) is not None
        )
        if not tags:
            return text
        first, sep, rest = text.partition("\n")
        return first + tags + sep + rest


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for its fields)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "job_id"):
            if (value := getattr(record, name, None)) is not None:
                line[name] = value
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: an odd ``extra`` value must not cost the line.
        return json.dumps(line, ensure_ascii=False, default=str)


def setup_logging(
    level: str = "info", log_format: LogFormat = "plain", stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's records to ``stream`` (stderr) in ``log_format``; return the handler.

    Replaces the root logger's handlers, so calling it again reconfigures instead of
    doubling the lines.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r} (known: {', '.join(LOG_FORMATS)})")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    return handler


def request_id_from(header: str | None) -> str:
    """The id to use for a request: the sanitised header value, else a new one."""
    if header:
        cleaned = _ID_CHARS.sub("", header)[:MAX_ID_LENGTH]
        if cleaned:
            return cleaned
    return uuid.uuid4().hex


@web.middleware
async def request_ids(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Give the request an id (``X-Request-Id``), log under it, and echo it in the response."""
    request_id = request_id_from(request.headers.get(HEADER))
    request[REQUEST_ID_KEY] = request_id
    token = REQUEST_ID.set(request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[HEADER] = request_id
        raise
    finally:
        REQUEST_ID.reset(token)
    if not response.prepared:
        response.headers[HEADER] = request_id
    return response


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log in our format: one line per request, with its id and fields.

    The plain line reads like the usual combined format; JSON lines carry ``remote``,
    ``method``, ``path``, ``status``, ``bytes``, ``duration`` and ``user_agent`` as fields.
    """

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Write the line for one finished request."""
        user_agent = request.headers.get("User-Agent", "-")
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d "%s" %.6fs',
            request.remote or "-",
            request.method,
            request.path_qs,
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            user_agent,
            time,
            extra={
                "request_id": request.get(REQUEST_ID_KEY),
                "remote": request.remote,
                "method": request.method,
                "path": request.path_qs,
                "status": response.status,
                "bytes": response.body_length,
                "duration": round(time, 6),
                "user_agent": user_agent,
            },
        )


def tag_jobs(handlers: Mapping[str, Handler]) -> dict[str, Handler]:
    """The same handlers, each running with :data:`JOB_ID` set to its job's id."""
    return {kind: _tagged(handler) for kind, handler in handlers.items()}


def _tagged(handler: Handler) -> Handler:
    async def run(ctx: BridgeContext, job: Job) -> int | None:
        token = JOB_ID.set(job.id)
        try:
            return await handler(ctx, job)
        finally:
            JOB_ID.reset(token)

    return run
