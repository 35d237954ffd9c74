"""The JSON Schema of run.json, kept in the repository beside the model.

python -m drtests.evidence.schema     # rewrite run.schema.json after a model change
"""

from __future__ import annotations

import json
from pathlib import Path

from drtests.evidence.model import SCHEMA_VERSION, RunRecord

SCHEMA_PATH = Path(__file__).with_name("run.schema.json")


def run_schema() -> dict[str, object]:
    schema = RunRecord.model_json_schema()
    schema["$id"] = f"https://drtests.invalid/schemas/run-{SCHEMA_VERSION}.json"
    schema["title"] = f"drtests run document {SCHEMA_VERSION}"
    return schema


if __name__ == "__main__":
    SCHEMA_PATH.write_text(json.dumps(run_schema(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {SCHEMA_PATH}")
