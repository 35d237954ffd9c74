"""Run by the deployment's own interpreter with its configuration: the runbook's
``python -c "from airflow.models import DagBag; DagBag()"``, the migration heads the
installed Airflow expects, and what ``airflow db check`` runs (``airflow.utils.db.check``),
in one interpreter start rather than three. Prints one JSON line."""

from __future__ import annotations

import json
import os
from typing import Any


def probe() -> dict[str, Any]:
    import airflow
    from airflow.models import DagBag
    from alembic.script import ScriptDirectory

    db_error = ""
    try:
        from airflow.utils import db

        db.check()
    except Exception as exc:  # reported as the check's finding, as the CLI would print it
        db_error = (str(exc).splitlines() or [type(exc).__name__])[0]
    bag = DagBag()
    script = ScriptDirectory(os.path.join(os.path.dirname(airflow.__file__), "migrations"))
    heads = sorted(script.get_heads())
    previous = script.get_revision(heads[0]).down_revision if heads else None
    return {
        "version": airflow.__version__,
        "heads": heads,
        "previous_revision": previous if isinstance(previous, str) else None,
        "dag_ids": sorted(bag.dag_ids),
        "import_errors": {str(k): str(v)[-300:] for k, v in bag.import_errors.items()},
        "db_error": db_error,
    }


if __name__ == "__main__":
    print(json.dumps(probe()))
