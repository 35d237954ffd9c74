"""A fault of this project: a topic's offsets rewound to 0 (a bad reset-offsets run), so
the streaming job would replay the whole topic."""

from __future__ import annotations

from typing import Any

from drtests.api import DatabaseTarget, Fault, require


class RewindOffsets(Fault[DatabaseTarget]):
    kind = "offsets-rewind"
    detected_by = ("offsets_match",)

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def describe(self) -> str:
        return f"offsets of topic {self.topic} rewound to 0"

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        with target.connect() as conn:
            rows = conn.execute(
                "SELECT consumer_group, partition, committed_offset FROM consumer_offsets "
                "WHERE topic = %s",
                (self.topic,),
            ).fetchall()
        return {"offsets": [[r[0], int(r[1]), int(r[2])] for r in rows]}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        with target.connect() as conn:
            conn.execute(
                "UPDATE consumer_offsets SET committed_offset = 0 WHERE topic = %s",
                (self.topic,),
            )

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        require(undo, "offsets")
        with target.connect() as conn:
            for group, partition, offset in undo["offsets"]:
                conn.execute(
                    "UPDATE consumer_offsets SET committed_offset = %s "
                    "WHERE consumer_group = %s AND topic = %s AND partition = %s",
                    (offset, group, self.topic, partition),
                )
        return f"{len(undo['offsets'])} offsets of {self.topic} put back"
