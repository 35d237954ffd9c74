"""S3 / MinIO: clients and servers (core), object versions, archives, cross-region copies
and integrity inventories, one module each."""

from drtests.objectstore.core import (
    S3_ERRORS,
    LocalS3Server,
    ObjectEntry,
    S3Endpoint,
    delete_all_versions,
    ensure_bucket,
    iter_objects,
    prefix_exists,
    s3_error,
    split_uri,
)

__all__ = [
    "S3_ERRORS",
    "LocalS3Server",
    "ObjectEntry",
    "S3Endpoint",
    "delete_all_versions",
    "ensure_bucket",
    "iter_objects",
    "prefix_exists",
    "s3_error",
    "split_uri",
]
