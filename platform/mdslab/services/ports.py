"""Loopback port checks, so a taken port fails with a name and a fix instead of a hang."""

from __future__ import annotations

import socket

import psutil


def port_in_use(host: str, port: int) -> bool:
    """True when a server could not bind ``port``: a listener *or* a live connection holds it.

    Binding (with SO_REUSEADDR, as Go and PostgreSQL servers do) is the test the servers themselves
    will face; connecting would miss client sockets that sit on the port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def listener_of(port: int) -> str:
    """'name (pid N)' of the process listening on ``port``, or '' when it cannot be told (not root)."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return ""
