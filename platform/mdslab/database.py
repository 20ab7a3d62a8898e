"""PostgreSQL connections (psycopg 3), built from one place."""

from __future__ import annotations

import psycopg
from psycopg import sql

from mdslab.settings import PostgresSettings


def connect(pg: PostgresSettings, *, database: str | None = None, timeout_s: int = 5) -> psycopg.Connection:
    return psycopg.connect(
        host=pg.host,
        port=pg.port,
        user=pg.user,
        password=pg.password.get_secret_value(),
        dbname=database or pg.database,
        connect_timeout=timeout_s,
        application_name="mdslab",
    )


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
