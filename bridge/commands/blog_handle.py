"""A blog named on the command line: ``name``, ``@name`` or ``name@domain``."""

from __future__ import annotations

from bridge.context import BridgeContext
from bridge.errors import BlogNotFound
from bridge.store.base import Blog


async def blog_named(ctx: BridgeContext, handle: str) -> Blog:
    """The blog with this handle (``@name`` and ``name@domain`` accepted)."""
    blog = await ctx.store.get_blog(handle.lstrip("@").split("@", 1)[0])
    if blog is None:
        raise BlogNotFound(f"no blog with handle {handle!r} (see feedfed blogs list)")
    return blog
