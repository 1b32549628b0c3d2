"""Config: TOML + environment, validated once, errors name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.config import build_config, load_config
from bridge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_without_file() -> None:
    config = load_config(env={})
    assert config.base_url == "http://127.0.0.1:8080"
    assert config.domain == "127.0.0.1:8080"
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 8080)
    assert config.database_url == "sqlite:///feedfed.db"
    assert config.blogs == ()


def test_example_config_loads() -> None:
    config = load_config(REPO / "config" / "feedfed.example.toml", env={})
    assert config.base_url.startswith("http")
    assert config.limits.max_feed_bytes > 0


def test_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text('[server]\nbase_url = "https://bridge.example"\n', encoding="utf-8")
    env = {
        "FEEDFED_CONFIG": str(path),
        "FEEDFED_BASE_URL": "https://other.example/",
        "FEEDFED_LISTEN": "[::1]:9000",
        "FEEDFED_DATABASE_URL": "sqlite:////var/lib/feedfed/db.sqlite",
    }
    config = load_config(env=env)
    assert config.base_url == "https://other.example"
    assert config.domain == "other.example"
    assert (config.listen_host, config.listen_port) == ("::1", 9000)
    assert config.database_url == "sqlite:////var/lib/feedfed/db.sqlite"
    assert config.source == path


def test_blogs_and_limits() -> None:
    raw: dict[str, Any] = {
        "limits": {"max_feed_bytes": 1000, "fetch_timeout": 2.5},
        "blogs": [
            {"handle": "talkabout", "feed_url": "https://t.example/feed/", "object_type": "Note"},
        ],
    }
    config = build_config(raw, env={})
    assert config.limits.max_feed_bytes == 1000
    assert config.limits.fetch_timeout == 2.5
    assert config.blogs[0].object_type == "Note"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"server": {"base_url": "ftp://x"}}, "server.base_url"),
        ({"server": {"base_url": "http://bridge.example"}}, "server.base_url"),
        ({"server": {"base_url": "https://bridge.example/sub"}}, "server.base_url"),
        ({"server": {"listen": "8080"}}, "server.listen"),
        ({"server": {"listen": "host:99999"}}, "server.listen"),
        ({"server": {"colour": "blue"}}, "server.colour"),
        ({"database": {"url": "mysql://x"}}, "database.url"),
        ({"limits": {"max_feed_bytes": "big"}}, "limits.max_feed_bytes"),
        ({"limits": {"max_feed_bytes": 0}}, "limits.max_feed_bytes"),
        ({"limits": {"poll_jitter": 1.5}}, "limits.poll_jitter"),
        (
            {"limits": {"min_poll_interval": 9000, "max_poll_interval": 60}},
            "limits.min_poll_interval",
        ),
        ({"blogs": [{"handle": "Bad Name", "feed_url": "https://x/"}]}, "blogs[0].handle"),
        ({"blogs": [{"handle": "ok", "feed_url": "not a url"}]}, "blogs[0].feed_url"),
        (
            {"blogs": [{"handle": "ok", "feed_url": "https://x/", "object_type": "Page"}]},
            "blogs[0].object_type",
        ),
        (
            {
                "blogs": [
                    {"handle": "a", "feed_url": "https://x/"},
                    {"handle": "a", "feed_url": "https://y/"},
                ]
            },
            "blogs[1].handle",
        ),
        (
            {"blogs": [{"handle": "ok", "feed_url": "https://x/", "note_template": "{title}"}]},
            "blogs[0].note_template",
        ),
    ],
)
def test_bad_values_name_their_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(raw, env={})
    assert caught.value.key == key
    assert key in str(caught.value)


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({}, env={"FEEDFED_LISTEN": "nonsense"})
    assert caught.value.key == "server.listen"


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken, env={})
