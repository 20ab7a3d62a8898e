"""The lakehouse: a registry of Delta tables on S3 and a small API to read, write and merge them."""

from mdslab.lakehouse.registry import Layer, TableRegistry, TableSpec
from mdslab.lakehouse.tables import (
    Lakehouse,
    NotAppendOnlyError,
    NotPublishedError,
    SchemaMismatchError,
    TableInfo,
    TableMissingError,
)

__all__ = [
    "Lakehouse",
    "Layer",
    "NotAppendOnlyError",
    "NotPublishedError",
    "SchemaMismatchError",
    "TableInfo",
    "TableMissingError",
    "TableRegistry",
    "TableSpec",
]
