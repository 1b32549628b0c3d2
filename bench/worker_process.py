"""A ``feedfed worker`` subprocess for the benches: its environment is this one without any
``FEEDFED_*`` variable, plus the bench's settings; its output goes to a log file."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


async def spawn_worker(
    settings: dict[str, str], kinds: str, log_path: Path, *args: str
) -> asyncio.subprocess.Process:
    """Start ``feedfed --log-level warning worker --kinds KINDS ARGS`` with ``settings``
    (``FEEDFED_*`` variables) as its configuration; output appended to ``log_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDFED_")}
    env.update(settings)
    with log_path.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            "--log-level",
            "warning",
            "worker",
            "--kinds",
            kinds,
            *args,
            env=env,
            stdout=log,
            stderr=log,
        )
