"""Loopback port checks, so a taken port fails with a name and a fix instead of a hang."""

from __future__ import annotations

import socket

import psutil


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def listener_of(port: int) -> str:
    """'name (pid N)' of the process listening on ``port``, or '' when it cannot be told (not root)."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return ""


def free_port_block(count: int, *, host: str = "127.0.0.1", start: int = 20000, stop: int = 60000) -> int:
    """First port of ``count`` consecutive free ports (and their +10000 gRPC twins are not needed)."""
    for base in range(start, stop - count, count):
        if not any(port_in_use(host, port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no block of {count} free ports between {start} and {stop} on {host}")
