"""Configuration: a TOML file plus ``FEEDFED_*`` environment overrides, validated once.

The result is a tree of frozen dataclasses (:mod:`bridge.config_sections`, re-exported here);
nothing reads configuration at import time. Every invalid value raises
:class:`~bridge.errors.ConfigError` naming its key.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge.config_sections import (
    DEFAULT_BASE_URL,
    DEFAULT_DATABASE_URL,
    DEFAULT_LINKBACKS_PER_MINUTE,
    DEFAULT_LISTEN,
    DEFAULT_NOTE_TEMPLATE,
    ENV_NAME_RE,
    HANDLE_RE,
    MODERATION_MODES,
    SINK_NAMES,
    BlogConfig,
    Config,
    Limits,
    ModerationConfig,
    ModerationMode,
    ObjectType,
    SinkName,
)
from bridge.errors import ConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_LINKBACKS_PER_MINUTE",
    "DEFAULT_LISTEN",
    "DEFAULT_NOTE_TEMPLATE",
    "ENV_NAME_RE",
    "HANDLE_RE",
    "MODERATION_MODES",
    "SINK_NAMES",
    "BlogConfig",
    "Config",
    "Limits",
    "ModerationConfig",
    "ModerationMode",
    "ObjectType",
    "SinkName",
    "build_config",
    "load_config",
    "validate_feed_url",
    "validate_handle",
]


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (``path``, else ``FEEDFED_CONFIG``, else defaults) and overrides."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    source: Path | None = None
    chosen = path if path is not None else env.get("FEEDFED_CONFIG")
    if chosen:
        source = Path(chosen)
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("FEEDFED_CONFIG", f"no such file: {source}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("FEEDFED_CONFIG", f"{source} is not valid TOML: {exc}") from None
    return build_config(raw, env, source)


def build_config(
    raw: Mapping[str, Any], env: Mapping[str, str], source: Path | None = None
) -> Config:
    """Validate a parsed TOML mapping plus environment overrides into a :class:`Config`."""
    server = _table(raw, "server")
    database = _table(raw, "database")
    limits_raw = _table(raw, "limits")
    _reject_unknown(raw, {"server", "database", "limits", "moderation", "blogs"}, "")
    _reject_unknown(
        server, {"base_url", "domain", "listen", "user_agent", "allow_private_addresses"}, "server."
    )
    _reject_unknown(database, {"url"}, "database.")

    base_url = env.get("FEEDFED_BASE_URL") or _str(server, "base_url", "server.", DEFAULT_BASE_URL)
    base_url, netloc = _validate_base_url(base_url)
    domain = env.get("FEEDFED_DOMAIN") or _str(server, "domain", "server.", netloc)
    listen = env.get("FEEDFED_LISTEN") or _str(server, "listen", "server.", DEFAULT_LISTEN)
    host, port = _parse_listen(listen)
    db_url = env.get("FEEDFED_DATABASE_URL") or _str(
        database, "url", "database.", DEFAULT_DATABASE_URL
    )
    _validate_database_url(db_url)
    user_agent = _str(server, "user_agent", "server.", f"feedfed/0.1 (+{base_url}/)")
    allow_private = server.get("allow_private_addresses", False)
    if not isinstance(allow_private, bool):
        raise ConfigError("server.allow_private_addresses", "must be true or false")
    if "FEEDFED_ALLOW_PRIVATE_ADDRESSES" in env:
        allow_private = _env_flag(env, "FEEDFED_ALLOW_PRIVATE_ADDRESSES")

    return Config(
        base_url=base_url,
        domain=domain,
        listen_host=host,
        listen_port=port,
        database_url=db_url,
        user_agent=user_agent,
        allow_private_addresses=allow_private,
        limits=_build_limits(limits_raw),
        moderation=_build_moderation(_table(raw, "moderation")),
        blogs=_build_blogs(raw.get("blogs", [])),
        source=source,
    )


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    value = env[name].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(name, f"must be 1 or 0, got {env[name]!r}")


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(key, "must be a table")
    return value


def _reject_unknown(table: Mapping[str, Any], known: set[str], prefix: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(known))})")


def _str(table: Mapping[str, Any], key: str, prefix: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(prefix + key, "must be a non-empty string")
    return value.strip()


def _validate_base_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("server.base_url", f"must be an http(s) URL with a host, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            "server.base_url", "must have no path, query or fragment: WebFinger lives at the root"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            "server.base_url",
            "http:// is only for trials on loopback; serve https:// through a TLS reverse proxy",
        )
    return f"{parts.scheme}://{parts.netloc}", parts.netloc


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError("server.listen", f"must be host:port, got {listen!r}")
    return host, int(port_text)


def _validate_database_url(url: str) -> None:
    scheme = url.split(":", 1)[0]
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise ConfigError("database.url", "SQLite URLs look like sqlite:///path/to/feedfed.db")
    elif scheme not in ("postgresql", "postgres"):
        raise ConfigError("database.url", f"unsupported database {scheme!r} (sqlite, postgresql)")


def _build_limits(raw: Mapping[str, Any]) -> Limits:
    defaults = Limits()
    values: dict[str, Any] = {}
    for name, default in vars(defaults).items():
        if name not in raw:
            continue
        value = raw[name]
        kind = type(default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"limits.{name}", "must be a number")
        if kind is int and not isinstance(value, int):
            raise ConfigError(f"limits.{name}", "must be a whole number")
        if value <= 0 and name != "poll_jitter":
            raise ConfigError(f"limits.{name}", "must be positive")
        values[name] = kind(value)
    _reject_unknown(raw, set(vars(defaults)), "limits.")
    limits = Limits(**values)
    if not 0 <= limits.poll_jitter < 1:
        raise ConfigError("limits.poll_jitter", "must be at least 0 and below 1")
    if limits.min_poll_interval > limits.max_poll_interval:
        raise ConfigError("limits.min_poll_interval", "must not exceed limits.max_poll_interval")
    return limits


def _build_moderation(raw: Mapping[str, Any]) -> ModerationConfig:
    defaults = ModerationConfig()
    _reject_unknown(raw, set(vars(defaults)), "moderation.")
    keywords = raw.get("keywords", [])
    if not isinstance(keywords, list) or not all(
        isinstance(word, str) and word.strip() for word in keywords
    ):
        raise ConfigError("moderation.keywords", "must be a list of non-empty strings")
    numbers: dict[str, Any] = {}
    for name in ("hold_threshold", "spam_threshold", "max_links", "rate_limit", "duplicate_window"):
        if name not in raw:
            continue
        value, kind = raw[name], type(getattr(defaults, name))
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"moderation.{name}", "must be a number")
        if kind is int and not isinstance(value, int):
            raise ConfigError(f"moderation.{name}", "must be a whole number")
        if value < 0 or (value == 0 and name != "max_links"):
            raise ConfigError(f"moderation.{name}", "must be positive")
        numbers[name] = kind(value)
    config = ModerationConfig(keywords=tuple(word.strip() for word in keywords), **numbers)
    if config.hold_threshold > config.spam_threshold:
        raise ConfigError("moderation.hold_threshold", "must not exceed moderation.spam_threshold")
    return config


def validate_handle(handle: str, key: str = "handle") -> str:
    """Return ``handle`` if it is a valid account name (Mastodon's rules), else raise."""
    if not HANDLE_RE.match(handle):
        raise ConfigError(key, f"{handle!r}: use 1-30 lowercase letters, digits or underscores")
    return handle


def validate_feed_url(url: str, key: str = "feed_url") -> str:
    """Return ``url`` if it is an absolute http(s) URL, else raise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"must be an absolute http(s) URL, got {url!r}")
    return url


def _build_blogs(raw: Any) -> tuple[BlogConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError("blogs", "must be an array of tables ([[blogs]])")
    blogs: list[BlogConfig] = []
    seen: set[str] = set()
    known = {f for f in BlogConfig.__dataclass_fields__}
    for index, item in enumerate(raw):
        prefix = f"blogs[{index}]."
        if not isinstance(item, Mapping):
            raise ConfigError(f"blogs[{index}]", "must be a table")
        _reject_unknown(item, known, prefix)
        handle = validate_handle(_str(item, "handle", prefix, ""), prefix + "handle")
        if handle in seen:
            raise ConfigError(prefix + "handle", f"{handle!r} is declared twice")
        seen.add(handle)
        feed_url = validate_feed_url(_str(item, "feed_url", prefix, ""), prefix + "feed_url")
        object_type = item.get("object_type", "Article")
        if object_type not in ("Article", "Note"):
            raise ConfigError(prefix + "object_type", 'must be "Article" or "Note"')
        template = _str(item, "note_template", prefix, DEFAULT_NOTE_TEMPLATE)
        if "{url}" not in template:
            raise ConfigError(prefix + "note_template", "must contain {url}")
        moderation = item.get("moderation", "publish_all")
        if moderation not in MODERATION_MODES:
            raise ConfigError(
                prefix + "moderation", f"must be one of {', '.join(MODERATION_MODES)}"
            )
        approves = item.get("manually_approves_followers", False)
        if not isinstance(approves, bool):
            raise ConfigError(prefix + "manually_approves_followers", "must be true or false")
        blogs.append(
            BlogConfig(
                handle=handle,
                feed_url=feed_url,
                object_type=object_type,
                note_template=template,
                manually_approves_followers=approves,
                display_name=_optional_str(item, "display_name", prefix),
                summary=_optional_str(item, "summary", prefix),
                moderation=moderation,
                **_sink_settings(item, prefix),
            )
        )
    return tuple(blogs)


def _sink_settings(item: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The sink keys of one ``[[blogs]]`` table, validated (the WordPress ones together)."""
    sink = item.get("sink", "feed")
    if sink not in SINK_NAMES:
        raise ConfigError(prefix + "sink", f"must be one of {', '.join(SINK_NAMES)}")
    url = _optional_str(item, "wordpress_url", prefix)
    if url is not None:
        validate_feed_url(url, prefix + "wordpress_url")
    user = _optional_str(item, "wordpress_user", prefix)
    env = _optional_str(item, "wordpress_password_env", prefix)
    if env is not None and not ENV_NAME_RE.match(env):
        raise ConfigError(
            prefix + "wordpress_password_env",
            "must name an environment variable (the password itself never goes in the file)",
        )
    if sink == "wordpress" and (url is None or user is None or env is None):
        raise ConfigError(
            prefix + "sink",
            '"wordpress" needs wordpress_url, wordpress_user and wordpress_password_env',
        )
    likes = item.get("likes_as_comments", False)
    if not isinstance(likes, bool):
        raise ConfigError(prefix + "likes_as_comments", "must be true or false")
    rate = item.get("linkbacks_per_minute", DEFAULT_LINKBACKS_PER_MINUTE)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
        raise ConfigError(prefix + "linkbacks_per_minute", "must be a whole number of at least 1")
    return {
        "sink": sink,
        "wordpress_url": url,
        "wordpress_user": user,
        "wordpress_password_env": env,
        "likes_as_comments": likes,
        "linkbacks_per_minute": rate,
    }


def _optional_str(table: Mapping[str, Any], key: str, prefix: str) -> str | None:
    if key not in table:
        return None
    return _str(table, key, prefix, "")
