"""PostgreSQL connections (psycopg 3), built from one place, and the locks the lab holds in it."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
from psycopg import sql

from mdslab.errors import MdslabError, ServiceUnavailableError
from mdslab.settings import PostgresSettings


class DatabaseUnavailableError(ServiceUnavailableError, psycopg.OperationalError):
    """PostgreSQL did not accept a connection. Still a psycopg OperationalError for code that retries."""


class LockHeldError(MdslabError):
    """Another process holds the lock; the message names it."""


def connect(
    pg: PostgresSettings,
    *,
    database: str | None = None,
    timeout_s: int = 5,
    application_name: str = "mdslab",
) -> psycopg.Connection:
    """A connection, or one line saying which server refused it and what to do (was: a traceback)."""
    try:
        return psycopg.connect(
            host=pg.host,
            port=pg.port,
            user=pg.user,
            password=pg.password.get_secret_value(),
            dbname=database or pg.database,
            connect_timeout=timeout_s,
            application_name=application_name[:63],  # PostgreSQL keeps 63 bytes
        )
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        where = f"{pg.host}:{pg.port}/{database or pg.database}"
        raise DatabaseUnavailableError(
            f"PostgreSQL at {where}: {reason}; `mdslab status` shows it (`mdslab up` starts the embedded one)"
        ) from exc


def ensure_database(pg: PostgresSettings, name: str, *, extensions: tuple[str, ...] = ()) -> bool:
    """Create database ``name`` if missing and the given extensions in it; True when it was created."""
    with connect(pg, database="postgres") as conn:
        conn.autocommit = True
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if extensions:
        with connect(pg, database=name) as conn:
            for extension in extensions:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
    return not exists


def drop_database(pg: PostgresSettings, name: str) -> None:
    """Drop database ``name`` if it exists, closing its connections (a benchmark's or a test's own)."""
    with connect(pg, database="postgres") as conn:
        conn.autocommit = True
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _lock_key(name: str) -> tuple[int, int]:
    """A lock name as the two 31-bit halves PostgreSQL's two-key advisory locks take (and pg_locks shows)."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return (digest >> 33) & 0x7FFFFFFF, digest & 0x7FFFFFFF


@contextmanager
def exclusive(pg: PostgresSettings, name: str, *, holder: str, busy: str) -> Iterator[None]:
    """Hold the session advisory lock ``name`` for the block, or raise :class:`LockHeldError` at once.

    A server-side lock rather than a file: the processes that share a lake may run on different
    machines (a Ray cluster, Airflow workers), and the server lets go of it when the holder's
    connection closes, so a holder killed with kill -9 never leaves a stale lock behind.

    ``holder`` describes this process to the next one (it is the lock connection's application name,
    with the pid and host); ``busy`` starts the refusal's one line, which then names the holder."""
    who = f"{holder}, pid {os.getpid()} on {socket.gethostname()}"
    first, second = _lock_key(name)
    with connect(pg, application_name=who) as conn:
        conn.autocommit = True
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (first, second)).fetchone()
        if not (row and row[0]):
            other = _holder(conn, first, second)
            raise LockHeldError(f"{busy} ({other}): wait for it to end, or stop it" if other else f"{busy}: run again")
        try:
            yield
        finally:
            with suppress(psycopg.Error):  # the connection gone (PostgreSQL restarted) took the lock with it
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (first, second))


def _holder(conn: psycopg.Connection, first: int, second: int) -> str | None:
    row = conn.execute(
        """SELECT a.application_name, to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
             AND l.classid::bigint = %s AND l.objid::bigint = %s""",
        (first, second),
    ).fetchone()
    if row is None:  # it let go between the two queries
        return None
    return f"{row[0] or 'another process'}, since {row[1]} UTC"
