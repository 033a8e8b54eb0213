"""The production server (gunicorn) on a free loopback port, for the HTTP benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
# The project's virtualenv, else the one running this script (a git worktree has none of its own).
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
if not GUNICORN.exists():
    GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(
    *,
    workers: int,
    env: dict[str, str] | None = None,
    config: str | None = None,
    args: Sequence[str] = (),
    output: IO[bytes] | None = None,
) -> Iterator[int]:
    """Start ``factory_portal.wsgi`` under gunicorn, wait until it accepts connections, yield
    its port, and stop it afterwards.

    With ``config`` (e.g. ``"python:factory_portal.gunicorn_conf"``, the production settings)
    gunicorn reads that file and only the bind address, ``workers`` and ``args`` (say
    ``["--threads", "4"]``) are given on the command line, where they win over the file; without
    it gunicorn's defaults apply, with a 120 s timeout and warnings only. ``output`` receives the
    server's stdout and stderr (its logs); by default they are this process's."""
    port = free_port()
    command = [
        str(GUNICORN),
        "factory_portal.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    if config is None:
        command += ["--timeout", "120", "--log-level", "warning"]
    else:
        command += ["--config", config]
    command += list(args)
    server = subprocess.Popen(  # noqa: S603 - fixed arguments
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=output,
        stderr=output,
    )
    try:
        for _ in range(100):
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {server.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()  # graceful: requests in flight finish first
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
