"""The offsets store: its schema, a seed, and its contents as a baseline."""

from __future__ import annotations

from typing import Any

import psycopg

SCHEMA = """
CREATE TABLE consumer_offsets (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    committed_offset bigint NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
)
"""
TOPICS = {"clickstream": 6, "orders": 3}
GROUP = "spark-sessionizer"

#: (group, topic, partition) → committed offset
Offsets = dict[tuple[str, str, int], int]


def create(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA)
    for topic, partitions in TOPICS.items():
        for partition in range(partitions):
            conn.execute(
                "INSERT INTO consumer_offsets VALUES (%s, %s, %s, %s)",
                (GROUP, topic, partition, 1000 * (partition + 1)),
            )


def read(conn: psycopg.Connection[Any]) -> Offsets:
    rows = conn.execute(
        "SELECT consumer_group, topic, partition, committed_offset FROM consumer_offsets"
    ).fetchall()
    return {(r[0], r[1], int(r[2])): int(r[3]) for r in rows}


def commit(conn: psycopg.Connection[Any], topic: str, records: int) -> int:
    """The streaming job commits ``records`` more on every partition of ``topic``; returns
    how many offsets it moved."""
    moved = conn.execute(
        "UPDATE consumer_offsets SET committed_offset = committed_offset + %s WHERE topic = %s",
        (records, topic),
    )
    return moved.rowcount
