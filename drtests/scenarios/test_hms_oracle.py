"""The real HMS judges the metastore checks.

Real Hive 2.3 writes a metastore with a broad feature set through Thrift. Every relation of
its model is then broken in each way it can break; after each damage the service is asked,
through Thrift, what it still serves, and the checks are run. Whatever the service can no
longer serve (or serves differently), a check must name; on the undamaged metastore no check
may report anything. The agreement table this produces is the README's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# the hive extra: HMS's Thrift client (pip install 'drtests[hive]')
pytest.importorskip("hmsclient", reason="pip install 'drtests[hive]' for the real HMS")
pytest.importorskip("thrift", reason="pip install 'drtests[hive]' for the real HMS")

from drtests.environments import Environment
from drtests.errors import RestoreFailed
from drtests.fixtures.hms_oracle import (
    aliases,
    applied,
    compare,
    covered,
    damages,
    served,
    snapshot,
)
from drtests.metastore.hive_features import seed_feature_rich
from drtests.metastore.model import read_model
from drtests.metastore.repair import repair_consistency
from drtests.metastore.service import HiveMetastoreService, HiveRuntime
from drtests.metastore.thrift import hms_client
from drtests.metastore.verify import Baseline, detect, take_baseline
from drtests.objectstore import split_uri
from drtests.plugin import DRSession
from drtests.postgres import connect, create_database, drop_database
from drtests.results import CheckResult, Finding

pytestmark = [pytest.mark.metastore, pytest.mark.hive, pytest.mark.xdist_group("hms-oracle")]

#: the checkout's README (an installed package has none: nothing to compare with)
README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN = "<!-- oracle-agreement:begin -->"
END = "<!-- oracle-agreement:end -->"
DATABASE = "hive23_oracle"


@dataclass
class OracleMetastore:
    service: HiveMetastoreService
    env: Environment
    allow_list: tuple[str, ...]

    def connect(self) -> Any:
        return connect(self.env.postgres, DATABASE, autocommit=True)

    def served(self) -> dict[str, str]:
        return served(self.service.host, self.service.port)

    def check(self, conn: Any, baseline: Baseline) -> list[CheckResult]:
        return detect(conn, baseline, self.allow_list, self.env.s3_primary.client())


@pytest.fixture(scope="module")
def oracle_metastore(
    dr: DRSession,
    dr_environment: Environment,
    hive_runtime: HiveRuntime,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OracleMetastore]:
    env = dr_environment
    first, second = dr.profile.buckets.data[:2]
    create_database(env.postgres, DATABASE)
    service = HiveMetastoreService(
        hive_runtime,
        env.postgres,
        DATABASE,
        tmp_path_factory.mktemp("hms-oracle"),
        buckets=(first, second),
        warehouse=f"s3a://{first}/oracle-warehouse",
    )
    try:
        service.start()
        with hms_client(service.host, service.port) as client:
            seed_feature_rich(client, service.warehouse, second)
        s3 = env.s3_primary.client()
        with connect(env.postgres, DATABASE, autocommit=True) as conn:
            locations = conn.execute(
                'SELECT s."LOCATION" FROM "SDS" s WHERE s."LOCATION" IS NOT NULL '
                'AND (EXISTS (SELECT 1 FROM "TBLS" t WHERE t."SD_ID" = s."SD_ID") '
                'OR EXISTS (SELECT 1 FROM "PARTITIONS" p WHERE p."SD_ID" = s."SD_ID"))'
            ).fetchall()
        for (location,) in locations:
            bucket, key = split_uri(location)
            s3.put_object(Bucket=bucket, Key=f"{key.strip('/')}/000000_0", Body=b"PAR1PAR1")
        yield OracleMetastore(service, env, dr.profile.metastore.location_allow_list)
    finally:
        service.stop()
        drop_database(env.postgres, DATABASE)


def _reported(results: list[CheckResult]) -> list[Finding]:
    return [f for r in results for f in r.findings if f.severity != "info"]


def _hms_says(changes: dict[str, str]) -> str:
    """What a client of the service sees, kept to kinds (Java messages vary)."""
    if not changes:
        return "serves everything as before"
    plain = ("not listed", "served differently", "new object")
    said = [
        f"{name}: {why if why in plain else 'not served (' + why.split(':')[0] + ')'}"
        for name, why in changes.items()
    ]
    more = f" (+{len(said) - 2} more)" if len(said) > 2 else ""
    return "; ".join(said[:2]) + more


def _repair_and_judge(
    om: OracleMetastore,
    conn: Any,
    baseline: Baseline,
    pristine: dict[str, str],
    damaged: dict[str, str],
    names: dict[str, set[str]],
) -> tuple[str, str]:
    """Run the consistency repair on the damaged metastore and ask HMS again: what the damage
    left alone must be served as before, nothing may break that was not broken, and whatever
    is still not served must still be reported (a repair hides nothing)."""
    try:
        report = repair_consistency(conn)
    except RestoreFailed as exc:
        return f"refused: {exc}", ""
    after = compare(pristine, om.served())
    findings = _reported(om.check(conn, baseline))
    harm = [o for o in after if o not in damaged]
    hidden = [o for o in after if not covered(o, findings, names)]
    problems = (f"broke {harm[:3]}; " if harm else "") + (f"hid {hidden[:3]}" if hidden else "")
    if not after:
        outcome = "serves everything as before"
    else:
        outcome = f"{len(after)} objects still differ, reported"
    done = "re-linked" if report.relinked else ("deleted leaks" if report.leaked_sds else "")
    return (f"{done}: {outcome}" if done else outcome), problems


def test_checks_agree_with_the_real_hms(oracle_metastore: OracleMetastore, dr: DRSession) -> None:
    """Whatever HMS cannot serve, or serves differently, after a damage is named by a check;
    the undamaged metastore has no finding."""
    om = oracle_metastore
    pristine = om.served()
    with om.connect() as conn:
        baseline = take_baseline(conn)
        clean = om.check(conn, baseline)
        assert not _reported(clean), [(f.check, f.subject, f.detail) for f in _reported(clean)]
        assert not [r.name for r in clean if r.error], [(r.name, r.error) for r in clean if r.error]
        names = aliases(conn)
        tables = snapshot(conn)
        rows: list[str] = []
        misses: list[str] = []
        for damage in damages(conn, read_model(conn)):
            with applied(conn, damage, tables):
                changes = compare(pristine, om.served())
                findings = _reported(om.check(conn, baseline))
                repaired, harm = _repair_and_judge(om, conn, baseline, pristine, changes, names)
            missed = [o for o in changes if not covered(o, findings, names)]
            checks = ", ".join(sorted({f.check for f in findings})) or "clean"
            rows.append(
                f"| `{damage.relation.name}` | {damage.kind} | {_hms_says(changes)} | {checks} "
                f"| {repaired} |"
            )
            if missed:
                misses.append(
                    f"{damage.label}: HMS {[(o, changes[o]) for o in missed][:3]}; checks {checks}"
                )
            if harm:
                misses.append(f"{damage.label}: repair {harm}")
    table = "\n".join(
        [
            "| relation | damage | HMS serves | checks report | after `--repair` |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    (dr.run_dir / "hms-oracle-agreement.md").write_text(table + "\n", encoding="utf-8")
    assert not misses, "\n".join(misses)
    _published(table)


def _published(table: str) -> None:
    """The README's agreement table is this test's; DRTESTS_WRITE_README=1 rewrites it."""
    if not README.is_file():
        return
    text = README.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    generated = f"{head}{BEGIN}\n{table}\n{END}{tail}"
    if os.environ.get("DRTESTS_WRITE_README") == "1":
        README.write_text(generated, encoding="utf-8")
        return
    assert generated == text, (
        "the README's agreement table is not this run's; "
        "DRTESTS_WRITE_README=1 pytest drtests/scenarios/test_hms_oracle.py rewrites it"
    )
