"""PostgreSQL connections (psycopg 3), built from one place."""

from __future__ import annotations

import psycopg
from psycopg import sql

from mdslab.errors import ServiceUnavailableError
from mdslab.settings import PostgresSettings


class DatabaseUnavailableError(ServiceUnavailableError, psycopg.OperationalError):
    """PostgreSQL did not accept a connection. Still a psycopg OperationalError for code that retries."""


def connect(pg: PostgresSettings, *, database: str | None = None, timeout_s: int = 5) -> psycopg.Connection:
    """A connection, or one line saying which server refused it and what to do (was: a traceback)."""
    try:
        return psycopg.connect(
            host=pg.host,
            port=pg.port,
            user=pg.user,
            password=pg.password.get_secret_value(),
            dbname=database or pg.database,
            connect_timeout=timeout_s,
            application_name="mdslab",
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
