"""The pytest plugin: options, markers, the run's identity and evidence, progress lines and
the closing summary table. Registered through the ``pytest11`` entry point."""

from __future__ import annotations

import dataclasses
import getpass
import os
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from drtests.config import Profile, load_profile, window_seconds
from drtests.environments import ensure_supported
from drtests.errors import DRError, SafetyError
from drtests.evidence.assemble import assemble_run, write_reports
from drtests.evidence.model import Attestation, Participant, RunRecord
from drtests.evidence.render import print_summary
from drtests.evidence.store import read_scenarios, runbook_hashes
from drtests.ledger import FaultLedger, utcnow
from drtests.load import CpuHog, slow_network
from drtests.monitoring.progress import ProgressPusher
from drtests.redaction import Redactor
from drtests.safety import DryRunStop, SafetyRails
from drtests.timing import RunTimes

#: the fixtures a scenario uses (``dr``, ``dr_environment``, ``scenario``, ``metastore``,
#: ``inject_fault`` …), served wherever drtests is installed, as pytest-postgresql serves its
#: factories: the shipped scenarios and a team's own use the same ones
pytest_plugins = [
    "drtests.fixtures.environment",
    "drtests.fixtures.scenario",
    "drtests.fixtures.metastore",
    "drtests.fixtures.objectstore",
    "drtests.fixtures.faults",
    "drtests.fixtures.hive",
    "drtests.fixtures.monitoring",
    "drtests.fixtures.k3s",
    "drtests.fixtures.airflow",
    "drtests.fixtures.mlflow",
    "drtests.fixtures.restore_test",
]

RUN_ID_ENV = "DRTESTS_RUN_ID"
MARKERS = {
    "destructive": "injects faults or restores: needs an allow-listed target on live runs",
    "gameday": "a DR scenario of the game day",
    "negative_control": "a scenario whose restore is skipped or sabotaged: verification must fail",
    "slow": "takes more than a few seconds",
    "metastore": "Hive Metastore component",
    "hive": "runs the real HMS 2.3 Thrift service (Java, pyspark, PostgreSQL JDBC driver)",
    "objectstore": "S3/MinIO component",
    "airflow": "Airflow metadata component",
    "mlflow": "MLflow component",
    "platform": "service workloads (Kubernetes or local processes)",
    "monitoring": "Prometheus, Pushgateway and alert rules",
    "readiness": "prevention measures of the runbooks exist and work",
    "exclude_alerts": "alert rules the local Prometheus leaves out (readiness controls)",
    "restore_component": "restore_component(NAME): the component a restore test tests",
    "restore_test": "restores real backups into a scratch target and tests them; read-only "
    "on every source (drtests restore-test)",
}


@dataclass
class DRSession:
    profile: Profile
    safety: SafetyRails
    redact: Redactor
    run_id: str
    run_dir: Path
    ledger: FaultLedger
    operator: str
    started_at: datetime
    controller: bool
    run: RunRecord | None = None
    manifest_head: str = ""
    #: restore progress pushed to a Pushgateway, when one is configured
    progress: ProgressPusher | None = None
    #: load mode (``--dr-load``): what the run was put under
    load: str = ""
    #: ``host:port`` of servers this run started beside the environment (a restore test's
    #: scratch server): work databases there die with them and are not ledgered
    owned_servers: set[str] = field(default_factory=set)


dr_session_key = pytest.StashKey[DRSession]()
load_key = pytest.StashKey[CpuHog]()
# hooks without a config argument (logreport) reach the terminal through this
_controller_config: pytest.Config | None = None
#: every test's phases, by worker: where the game day's time goes
_run_times = RunTimes()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("drtests", "disaster-recovery game day")
    group.addoption(
        "--dr-env",
        choices=("local", "containers", "live"),
        default=None,
        help="where the platform runs (default: the profile's, else local)",
    )
    group.addoption("--dr-profile", type=Path, default=None, help="profile TOML file")
    group.addoption(
        "--dr-report-dir",
        type=Path,
        default=Path("reports"),
        help="evidence is written to DIR/<run-id>/ (default: reports)",
    )
    group.addoption(
        "--dr-pushgateway",
        metavar="URL",
        default=None,
        help="push restore progress metrics to this Prometheus Pushgateway",
    )
    group.addoption(
        "--dr-dry-run",
        action="store_true",
        help="print the plan of every destructive step and perform no write",
    )
    group.addoption(
        "--dr-allow-destructive",
        action="store_true",
        help="allow faults and restores on allow-listed live targets",
    )
    group.addoption(
        "--dr-confirm-production",
        metavar="PROFILE",
        default=None,
        help="typed confirmation for production targets: the profile's name",
    )
    group.addoption(
        "--dr-load",
        action="store_true",
        help="load mode: one busy process per core and a slow network in front of the HTTP "
        "services, for the whole run (slow must not be reported as broken)",
    )
    group.addoption(
        "--dr-load-delay",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="load mode: how long each HTTP response is held back (default 3)",
    )
    group.addoption("--dr-operator", default=None, help="who runs the game day (evidence)")
    group.addoption(
        "--dr-restore-component",
        action="append",
        default=[],
        choices=("metastore", "airflow", "mlflow", "s3"),
        help="restore test: a component to test (repeatable; default the profile's)",
    )
    group.addoption(
        "--dr-restore-select",
        choices=("latest", "random"),
        default=None,
        help="restore test: the newest recovery point in the window, or a random one",
    )
    group.addoption(
        "--dr-restore-window",
        default=None,
        metavar="WINDOW",
        help="restore test: recovery points taken within WINDOW (7d, 36h, 90m)",
    )
    group.addoption(
        "--dr-restore-seed",
        type=int,
        default=None,
        help="restore test: the seed of a random choice (default: derived from the run id)",
    )
    group.addoption(
        "--dr-participant",
        action="append",
        default=[],
        metavar="NAME:ROLE",
        help="a participant of the game day, for the report's sign-off block",
    )
    group.addoption(
        "--dr-attest",
        action="append",
        default=[],
        metavar="ITEM=NAME[:ROLE]",
        help="attest a checklist item, e.g. stakeholders-notified='Jane Doe:IC'",
    )


def _operator(config: pytest.Config, profile: Profile) -> str:
    chosen = config.getoption("dr_operator") or profile.operator
    if chosen:
        return str(chosen)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    try:
        profile = load_profile(config.getoption("dr_profile"), config.getoption("dr_env"))
        ensure_supported(profile.environment)
    except DRError as exc:
        raise pytest.UsageError(str(exc)) from None
    window = config.getoption("dr_restore_window")
    if window:
        try:
            window_seconds(window)
        except ValueError as exc:
            raise pytest.UsageError(f"--dr-restore-window: {exc}") from None
    controller = not hasattr(config, "workerinput")
    run_id = os.environ.get(RUN_ID_ENV) or f"{utcnow():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    os.environ[RUN_ID_ENV] = run_id  # xdist workers inherit it: one run, one evidence folder
    run_dir = (Path(config.getoption("dr_report_dir")) / run_id).absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    redact = Redactor(profile.secrets())
    safety = SafetyRails(
        profile,
        allow_destructive=config.getoption("dr_allow_destructive"),
        dry_run=config.getoption("dr_dry_run"),
        confirmation=config.getoption("dr_confirm_production"),
        plan_file=run_dir / "plan.txt",
    )
    pushgateway = config.getoption("dr_pushgateway") or profile.monitoring.pushgateway_url
    config.stash[dr_session_key] = DRSession(
        progress=ProgressPusher(pushgateway, run_id) if pushgateway else None,
        profile=profile,
        safety=safety,
        redact=redact,
        run_id=run_id,
        run_dir=run_dir,
        ledger=FaultLedger(profile.state_dir.absolute() / "fault-ledger.jsonl"),
        operator=_operator(config, profile),
        started_at=utcnow(),
        controller=controller,
    )
    if config.getoption("dr_load"):
        delay = float(config.getoption("dr_load_delay"))
        slow_network(delay)  # in every process: each has its own clients
        if controller:
            hog = CpuHog()
            hog.start()
            config.stash[load_key] = hog
            config.stash[dr_session_key].load = (
                f"{hog.processes} busy processes (one per core), every HTTP response held "
                f"back {delay:g} s"
            )
    if controller:
        global _controller_config
        _controller_config = config


def pytest_unconfigure(config: pytest.Config) -> None:
    hog = config.stash.get(load_key, None)
    if hog is not None:
        hog.stop()
    slow_network(None)


def dr_session(config: pytest.Config) -> DRSession:
    return config.stash[dr_session_key]


class RedactedRepr:
    """A failure's rendering with the profile's secrets masked; keeps the crash line that
    the evidence quotes."""

    def __init__(self, longrepr: Any, redact: Redactor) -> None:
        self.text = redact(str(longrepr))
        crash: Any = getattr(longrepr, "reprcrash", None)
        message = getattr(crash, "message", None)
        if message is not None and dataclasses.is_dataclass(crash) and not isinstance(crash, type):
            crash = dataclasses.replace(crash, message=redact(str(message)))
        self.reprcrash = crash

    def toterminal(self, out: Any) -> None:
        for line in self.text.splitlines():
            out.line(line)

    def __str__(self) -> str:
        return self.text


def _redacted(report: Any, redact: Redactor) -> None:
    """A failure's text (with ``-l`` its locals, with ``--tb=long`` every frame) and the
    captured output, with every secret of the profile masked: the terminal, JUnit XML and
    every other consumer read these."""
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        report.longrepr = RedactedRepr(report.longrepr, redact)
    elif isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        path, line, message = report.longrepr
        report.longrepr = (path, line, redact(str(message)))
    report.sections = [(title, redact(text)) for title, text in report.sections]


def _redact_with(config: pytest.Config, report: Any) -> Any:
    dr = config.stash.get(dr_session_key, None)
    if dr is not None:
        _redacted(report, dr.redact)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    return _redact_with(item.config, (yield))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    return _redact_with(collector.config, (yield))


@contextmanager
def _rails_verdict() -> Iterator[None]:
    """A write the rails stopped, wherever it was attempted (a fault, a backup, an S3
    request of a negative control, in a fixture or the test): a dry run skips with the plan
    line, a refusal fails with one line, never a traceback."""
    try:
        yield
    except DryRunStop as stop:
        pytest.skip(str(stop))
    except SafetyError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _rails_verdict():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _rails_verdict():
        return (yield)


def pytest_sessionstart(session: pytest.Session) -> None:
    dr = session.config.stash.get(dr_session_key, None)
    if dr is None or not dr.controller:
        return
    from drtests.recovery import revert_leftovers

    for line in revert_leftovers(dr.ledger, dr.profile, dr.safety):
        session.config.get_terminal_writer().line(f"fault ledger: {dr.redact(line)}")


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, str] | None:
    """No progress dot for game-day scenarios: each gets its own line at teardown."""
    if report.when == "call" and "gameday" in report.keywords:
        return report.outcome, "", report.outcome.upper()
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _run_times.record(report)
    if report.when != "teardown":  # the scenario fixture adds its figures at teardown
        return
    props = dict(report.user_properties)
    if "dr_verdict" not in props:
        return
    reporter = (
        _controller_config.pluginmanager.get_plugin("terminalreporter")
        if _controller_config
        else None
    )
    if reporter is None:
        return
    ok = props["dr_verdict"] in {"passed", "control-held"}
    mark = "✔" if ok else "✘"
    reporter.write_line(
        f"{mark} {props.get('dr_scenario', report.nodeid)}  {props['dr_verdict']:<14} "
        f"RTO {props.get('dr_rto', '—')}  RPO {props.get('dr_rpo', '—')}",
        green=ok,
        red=not ok,
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    dr = session.config.stash.get(dr_session_key, None)
    if dr is None or not dr.controller:
        return
    scenarios = read_scenarios(dr.run_dir)
    if not scenarios:
        return
    try:
        participants, attestations = _people(session.config)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    run = assemble_run(
        run_id=dr.run_id,
        started_at=dr.started_at,
        ended_at=utcnow(),
        operator=dr.operator,
        profile=dr.profile,
        targets=_read_lines(dr.run_dir / "targets.txt"),
        runbooks=runbook_hashes(Path(str(session.config.rootpath))),
        dry_run=dr.safety.dry_run,
        scenarios=scenarios,
        participants=participants,
        attestations=attestations,
        load=dr.load,
    )
    dr.manifest_head = write_reports(dr.run_dir, run, dr.redact)
    dr.run = run


def _people(config: pytest.Config) -> tuple[list[Participant], list[Attestation]]:
    """--dr-participant NAME:ROLE and --dr-attest ITEM=NAME[:ROLE]."""
    participants = []
    for spec in config.getoption("dr_participant"):
        name, _, role = spec.partition(":")
        if not name or not role:
            raise ValueError(f"--dr-participant {spec!r}: expected NAME:ROLE")
        participants.append(Participant(name=name, role=role))
    attestations = []
    for spec in config.getoption("dr_attest"):
        item, _, who = spec.partition("=")
        name, _, role = who.partition(":")
        if not item or not name:
            raise ValueError(f"--dr-attest {spec!r}: expected ITEM=NAME[:ROLE]")
        attestations.append(Attestation(item=item, by=name, role=role, at=utcnow()))
    return participants, attestations


def _read_lines(path: Path) -> list[str]:
    """Lines that workers appended (targets touched, dry-run plan), deduplicated in order."""
    if not path.exists():
        return []
    return list(dict.fromkeys(line for line in path.read_text().splitlines() if line))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    dr = config.stash.get(dr_session_key, None)
    if dr is None or dr.run is None:
        return
    console = Console(
        file=terminalreporter._tw._file, width=max(170, terminalreporter._tw.fullwidth)
    )
    print_summary(dr.run, console)
    for line in _run_times.lines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"evidence: {dr.run_dir}")
    terminalreporter.write_line(f"evidence manifest head (sha256): {dr.manifest_head}")
    plan = _read_lines(dr.run_dir / "plan.txt")
    if plan:
        terminalreporter.write_line("dry-run plan (nothing was written):")
        for line in plan:
            terminalreporter.write_line(f"  {dr.redact(line)}")
