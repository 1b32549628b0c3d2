"""The configuration's sections: one frozen dataclass per TOML table, with its defaults.

:mod:`bridge.config` reads and validates the file and the environment into these; this module
only describes them (and the value sets and defaults they are checked against), so whatever
needs a section's type or a default imports it without the loading code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ObjectType = Literal["Article", "Note"]
ModerationMode = Literal["publish_all", "hold_first_time", "hold_all"]
MODERATION_MODES: tuple[ModerationMode, ...] = ("publish_all", "hold_first_time", "hold_all")
SinkName = Literal["feed", "wordpress", "pingback", "webmention"]
SINK_NAMES: tuple[SinkName, ...] = ("feed", "wordpress", "pingback", "webmention")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_LINKBACKS_PER_MINUTE = 10

HANDLE_RE = re.compile(r"^[a-z0-9_]{1,30}$")
DEFAULT_NOTE_TEMPLATE = '<p><strong>{title}</strong></p>{summary}<p><a href="{url}">{url}</a></p>'
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_DATABASE_URL = "sqlite:///feedfed.db"


@dataclass(frozen=True)
class BlogConfig:
    """One blog declared in the config file (blogs may also be added with the CLI)."""

    handle: str
    feed_url: str
    object_type: ObjectType = "Article"
    note_template: str = DEFAULT_NOTE_TEMPLATE
    manually_approves_followers: bool = False
    display_name: str | None = None
    summary: str | None = None
    moderation: ModerationMode = "publish_all"
    """Which new comments wait for a moderator (see :mod:`bridge.backfeed.moderation`)."""
    sink: SinkName = "feed"
    """How comments and linkbacks reach the blog (see :mod:`bridge.sinks`)."""
    wordpress_url: str | None = None
    """The WordPress site's address (its REST API is ``/wp-json/`` under it)."""
    wordpress_user: str | None = None
    wordpress_password_env: str | None = None
    """Name of the environment variable holding the application password (never the secret)."""
    likes_as_comments: bool = False
    """WordPress: likes and boosts as comments of type ``like``/``repost``, not pingbacks."""
    linkbacks_per_minute: int = DEFAULT_LINKBACKS_PER_MINUTE
    """At most this many pingbacks or webmentions a minute go to the blog."""


@dataclass(frozen=True)
class ModerationConfig:
    """The ``[moderation]`` table: spam scoring and duplicate detection for every blog."""

    keywords: tuple[str, ...] = ()
    hold_threshold: float = 0.6
    spam_threshold: float = 1.0
    max_links: int = 3
    rate_limit: int = 10
    duplicate_window: float = 86_400.0


@dataclass(frozen=True)
class Limits:
    """Caps and timings; all durations in seconds."""

    max_feed_bytes: int = 10 * 1024 * 1024
    fetch_timeout: float = 30.0
    min_poll_interval: int = 5 * 60
    max_poll_interval: int = 6 * 60 * 60
    max_error_backoff: int = 24 * 60 * 60
    poll_jitter: float = 0.1
    featured_count: int = 5
    page_size: int = 20
    websub_lease_seconds: int = 7 * 24 * 60 * 60
    max_inbox_bytes: int = 1024 * 1024
    signature_max_skew: int = 60 * 60
    remote_fetch_timeout: float = 30.0
    key_cache_ttl: int = 24 * 60 * 60
    key_failure_ttl: int = 2 * 60
    key_refresh_interval: int = 5 * 60
    actor_cache_ttl: int = 24 * 60 * 60
    delivery_timeout: float = 30.0
    delivery_retries: int = 16
    host_unavailable_after: int = 7 * 24 * 60 * 60
    worker_concurrency: int = 32
    per_host_concurrency: int = 4
    job_lease_seconds: int = 5 * 60
    job_poll_interval: float = 1.0
    done_job_retention: int = 7 * 24 * 60 * 60
    thread_max_depth: int = 20
    thread_max_items: int = 200


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration."""

    base_url: str
    domain: str
    listen_host: str
    listen_port: int
    database_url: str
    user_agent: str
    # Lets the bridge contact fediverse servers on private and loopback addresses: only for
    # local trials (FEEDFED_ALLOW_PRIVATE_ADDRESSES=1); logged loudly at start.
    allow_private_addresses: bool = False
    limits: Limits = field(default_factory=Limits)
    moderation: ModerationConfig = field(default_factory=ModerationConfig)
    blogs: tuple[BlogConfig, ...] = ()
    source: Path | None = None
