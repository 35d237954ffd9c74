"""Hive partition names: escaping as Hive's FileUtils does it, and the partition
directories found in S3 under a table's location, walked one level per partition key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# FileUtils.charToEscape: control characters, DEL and these
_ESCAPED = frozenset({*"\"#%'*/:=?\\{[]^", "\x7f", *(chr(c) for c in range(1, 32))})


def escape_path_name(value: str | None) -> str:
    if value is None or value == "":
        return DEFAULT_PARTITION
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in value)


def unescape_path_name(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "%" and i + 2 < len(text) + 0 and _is_hex(text[i + 1 : i + 3]):
            out.append(chr(int(text[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)


def make_part_name(keys: Sequence[str], values: Sequence[str | None]) -> str:
    """PART_NAME as HMS stores it: escaped, key=value per level, joined by '/'."""
    return "/".join(
        f"{escape_path_name(k.lower())}={escape_path_name(v)}"
        for k, v in zip(keys, values, strict=True)
    )


def sql_escape_path_name(column: str) -> str:
    """The same escaping as a SQL expression, for set-based checks ('%' first). It holds no
    literal '%', so it can sit in a query that also takes parameters."""
    expr = f"replace({column}, chr(37), chr(37) || '25')"
    for char in sorted(_ESCAPED - {"%"}):
        expr = f"replace({expr}, chr({ord(char)}), chr(37) || '{ord(char):02X}')"
    # one regular expression finds that most values have nothing to escape (its class of
    # the escaped characters is a constant, folded when the query is planned)
    members = " || ".join(
        ("chr(92) || " if c in "\\]^-[" else "") + f"chr({ord(c)})" for c in sorted(_ESCAPED)
    )
    return (
        f"CASE WHEN coalesce({column}, '') = '' THEN '{DEFAULT_PARTITION}' "
        f"WHEN {column} !~ ('[' || {members} || ']') THEN {column} ELSE {expr} END"
    )


@dataclass
class S3Partitions:
    """Partition directories under a table location, by canonical PART_NAME."""

    found: dict[str, tuple[str | None, ...]] = field(default_factory=dict)  # name → values
    skipped: list[str] = field(default_factory=list)
    requests: int = 0


def walk_partitions(
    client: S3Client, bucket: str, table_key: str, keys: Sequence[str]
) -> S3Partitions:
    """MSCK's walk: one directory level per partition key, directories named ``key=value``;
    names starting with ``_`` or ``.`` are skipped, others that do not fit are reported.

    The tree is read from one flat listing of the table location (a request per 1,000
    objects, not one per directory); a directory exists when an object or a directory
    marker lies under it.
    """
    result = S3Partitions()
    prefix = table_key.rstrip("/") + "/"
    skipped: dict[str, None] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        result.requests += 1
        for obj in page.get("Contents", []):
            segments = obj["Key"][len(prefix) :].split("/")[:-1]  # directories only
            if len(segments) < len(keys):
                continue
            values: list[str | None] = []
            for depth, (segment, key) in enumerate(zip(segments, keys, strict=False)):
                if segment.startswith(("_", ".")):
                    break
                dir_key, sep, raw_value = segment.partition("=")
                if not sep or unescape_path_name(dir_key).lower() != key.lower():
                    where = "/".join(segments[: depth + 1])
                    skipped[f"s3://{bucket}/{prefix}{where}/ (expected {key}=…)"] = None
                    break
                value = unescape_path_name(raw_value)
                values.append(None if value == DEFAULT_PARTITION else value)
            else:
                result.found[make_part_name(keys, values)] = tuple(values)
    result.skipped = list(skipped)
    return result
