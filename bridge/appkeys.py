"""Typed keys for state kept on the aiohttp application (``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web

from bridge.config import Config
from bridge.context import BridgeContext

CONFIG = web.AppKey("config", Config)
CONTEXT = web.AppKey("context", BridgeContext)
