"""MongoDB-protocol connections (pymongo), built from one place: the claims system's document store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pymongo
from pymongo.errors import ConnectionFailure

from mdslab.errors import ServiceUnavailableError
from mdslab.settings import MongoSettings


class DocumentStoreUnavailableError(ServiceUnavailableError):
    """The MongoDB-protocol server did not answer."""


@contextmanager
def connect(mongo: MongoSettings, *, timeout_s: float = 5.0) -> Iterator[pymongo.MongoClient[dict[str, object]]]:
    """A client that has answered a ping, or one line saying which server did not and what to do.

    ``tz_aware``: dates come back as UTC datetimes, as the lake stores them."""
    timeout_ms = int(timeout_s * 1000)
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        mongo.url,
        username=mongo.user or None,
        password=mongo.password.get_secret_value() or None,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
    )
    try:
        try:
            client.admin.command("ping")
        except ConnectionFailure as exc:
            host, port = mongo.host_port
            raise DocumentStoreUnavailableError(
                f"the document store (MongoDB protocol) does not answer at {host}:{port} "
                f"({type(exc).__name__}): start it with `mdslab up`, or set MDSLAB_MONGO__URL"
            ) from None
        yield client
    finally:
        client.close()
