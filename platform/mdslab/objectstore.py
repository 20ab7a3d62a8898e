"""The S3 client and the settings every S3-speaking library needs, built from one place.

Administration (buckets, listings) goes through the MinIO SDK; table IO goes through delta-rs and
pyarrow, which take ``storage_options`` / a filesystem built here from the same settings.
"""

from __future__ import annotations

import urllib3
from minio import Minio

from mdslab.errors import ServiceUnavailableError
from mdslab.settings import ObjectStoreSettings


def s3_client(s3: ObjectStoreSettings, *, timeout_s: float = 10.0, retries: int = 2) -> Minio:
    host, port = s3.host_port
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s * 3),
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
    )
    return Minio(
        f"{host}:{port}",
        access_key=s3.access_key,
        secret_key=s3.secret_key.get_secret_value(),
        secure=s3.secure,
        region=s3.region,
        http_client=http,
    )


def ensure_buckets(client: Minio, names: list[str]) -> list[str]:
    """Create the buckets that do not exist yet; returns the ones it created."""
    created = []
    try:
        for name in names:
            if not client.bucket_exists(name):
                client.make_bucket(name)
                created.append(name)
    except urllib3.exceptions.HTTPError as exc:
        raise unreachable(exc) from None
    return created


def remove_buckets(client: Minio, names: list[str]) -> list[str]:
    """Delete the buckets and everything in them (a benchmark's or a test's own lake); returns one line
    per bucket that could not be deleted, and why."""
    from minio.deleteobjects import DeleteObject

    problems = []
    for bucket in names:
        try:
            if not client.bucket_exists(bucket):
                continue
            objects = (
                DeleteObject(o.object_name) for o in client.list_objects(bucket, recursive=True) if o.object_name
            )
            errors = list(client.remove_objects(bucket, objects))
            if errors:
                problems.append(f"bucket {bucket}: {len(errors)} objects not deleted")
            else:
                client.remove_bucket(bucket)
        except Exception as exc:
            problems.append(f"bucket {bucket}: {exc}")
    return problems


def unreachable(exc: urllib3.exceptions.HTTPError) -> ServiceUnavailableError:
    """One line for an S3 server that did not answer (urllib3's own text is a nested repr)."""
    pool = getattr(exc, "pool", None)
    where = f" at {pool.host}:{pool.port}" if pool is not None else ""
    reason = getattr(exc, "reason", None) or exc
    cause = str(reason).rsplit(": ", 1)[-1].rstrip("')")
    return ServiceUnavailableError(f"S3{where} did not answer ({cause}): `mdslab status` shows it")


def delta_storage_options(s3: ObjectStoreSettings) -> dict[str, str]:
    """delta-rs (object_store) options. Conditional PUT is relied on, so no unsafe-rename flag."""
    options = {
        "AWS_ENDPOINT_URL": s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key.get_secret_value(),
        "AWS_REGION": s3.region,
    }
    if not s3.secure:
        options["AWS_ALLOW_HTTP"] = "true"
    return options
