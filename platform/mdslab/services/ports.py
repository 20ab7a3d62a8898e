"""Loopback port checks, so a taken port fails with a name and a fix instead of a hang."""

from __future__ import annotations

import ipaddress
import socket

import psutil

from mdslab.errors import ConfigurationError, ServiceUnavailableError


class PortTakenError(ServiceUnavailableError):
    """A port this command must listen on is held by another process."""


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


def require_free_port(host: str, port: int, *, what: str, fix: str) -> None:
    """Fail in one line naming the process that holds ``port`` (when it can be told) and what to do.

    Checked before a command prints that it is listening or starts its work, so the first line a
    person reads is the reason, not a banner followed by a bind error."""
    if port_in_use(host, port):
        raise port_taken(host, port, what=what, fix=fix)


def port_taken(host: str, port: int, *, what: str, fix: str) -> PortTakenError:
    """The error for a taken port; also for a bind that lost a race after the check."""
    holder = listener_of(port)
    return PortTakenError(f"port {port} on {host} ({what}) is taken{' by ' + holder if holder else ''}: {fix}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost``, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def require_loopback(host: str, *, what: str, why: str, fix: str) -> None:
    """Refuse to serve ``what`` beyond this machine, in one line saying why and what to do instead."""
    if not is_loopback(host):
        raise ConfigurationError(f"--host {host} is not a loopback address: {what} {why}; {fix}")
