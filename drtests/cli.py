"""The ``drtests`` command: the game day, profile validation, the fault ledger.

Errors the user can act on are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from drtests.config import Profile, load_profile
from drtests.environments import ensure_supported
from drtests.errors import DRError
from drtests.ledger import FaultLedger
from drtests.redaction import Redactor

#: the scenarios shipped with the package: the runbooks' game day and restore test
SHIPPED_SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def scenario_folders(own: list[str] | None, shipped: bool = True) -> list[Path]:
    """The shipped scenarios and the user's own folders (``--scenarios DIR``, each one
    checked now rather than by pytest later)."""
    folders = [SHIPPED_SCENARIOS] if shipped else []
    for name in own or []:
        path = Path(name)
        if not path.exists():
            raise DRError(f"scenario folder {path} not found (--scenarios)")
        if path.resolve() != SHIPPED_SCENARIOS:
            folders.append(path)
    if not folders:
        raise DRError("no scenarios to run: --no-shipped-scenarios needs --scenarios DIR")
    return folders


def _gameday(args: argparse.Namespace, extra: list[str]) -> int:
    profile = load_profile(args.profile, args.env)  # validates before anything starts
    ensure_supported(profile.environment)
    scenarios = scenario_folders(args.scenarios, not args.no_shipped_scenarios)
    if profile.environment == "containers":
        _prepare_containers(profile)
    argv = _pytest_argv(args, profile, scenarios, args.marker)
    if args.dry_run:
        argv.append("--dr-dry-run")
    if args.allow_destructive:
        argv.append("--dr-allow-destructive")
    if args.confirm_production:
        argv += ["--dr-confirm-production", args.confirm_production]
    if args.operator:
        argv += ["--dr-operator", args.operator]
    for participant in args.participant:
        argv += ["--dr-participant", participant]
    for attestation in args.attest:
        argv += ["--dr-attest", attestation]
    print(
        f"drtests game day: environment {profile.environment}, profile {profile.name}, "
        f"{args.workers} worker(s)",
        flush=True,
    )
    return subprocess.call([*argv, *extra], env=os.environ.copy())


def _restore_test(args: argparse.Namespace, extra: list[str]) -> int:
    """Restore the real backups into a scratch server, start their applications there and
    test them; read-only on every source. Exit 0 all restorable, 1 a finding, 2 could not
    run (a scheduler's three answers)."""
    import tempfile

    from drtests.config import RESTORE_TEST_COMPONENTS as COMPONENTS
    from drtests.config import window_seconds
    from drtests.restoretest.exitcode import COULD_NOT_RUN, exit_code

    try:
        profile = load_profile(args.profile, args.env)
    except DRError as exc:
        print(f"drtests: error: {exc}", file=sys.stderr)
        return COULD_NOT_RUN
    ensure_supported(profile.environment)
    if args.window:
        try:
            window_seconds(args.window)
        except ValueError as exc:
            print(f"drtests: error: --window: {exc}", file=sys.stderr)
            return COULD_NOT_RUN
    components = [c.strip() for c in (args.component or "").split(",") if c.strip()]
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        print(
            f"drtests: error: --component: unknown {', '.join(unknown)} "
            f"(choose from {', '.join(COMPONENTS)})",
            file=sys.stderr,
        )
        return COULD_NOT_RUN
    try:
        scenarios = scenario_folders(args.scenarios, not args.no_shipped_scenarios)
    except DRError as exc:
        print(f"drtests: error: {exc}", file=sys.stderr)
        return COULD_NOT_RUN
    if profile.environment == "containers":
        _prepare_containers(profile)
    argv = _pytest_argv(args, profile, scenarios, "restore_test and not negative_control")
    argv.append("--tb=line")  # what failed is in the findings and the evidence
    for component in components:
        argv += ["--dr-restore-component", component]
    if args.select:
        argv += ["--dr-restore-select", args.select]
    if args.window:
        argv += ["--dr-restore-window", args.window]
    if args.seed is not None:
        argv += ["--dr-restore-seed", str(args.seed)]
    if args.operator:
        argv += ["--dr-operator", args.operator]
    print(
        f"drtests restore test: environment {profile.environment}, profile {profile.name}, "
        f"components {', '.join(components) or ', '.join(profile.restore_test.components)}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="drtests-restore-test-") as tmp:
        junit = Path(tmp) / "junit.xml"
        code = subprocess.call([*argv, f"--junitxml={junit}", *extra], env=os.environ.copy())
        result, why = exit_code(code, junit)
    print(f"drtests restore test: exit {result}: {why}", flush=True)
    return result


def _pytest_argv(
    args: argparse.Namespace, profile: Profile, scenarios: list[Path], marker: str
) -> list[str]:
    """pytest on the scenario folders, as the game day and the restore test run it."""
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *(str(folder) for folder in scenarios),
        "-m",
        marker,
        "-q",
        "-rfEs",
        "--no-header",
        "-p",
        "no:cacheprovider",
        "--dr-report-dir",
        str(args.report_dir),
        "--dr-env",
        profile.environment,
    ]
    if args.workers > 1:
        # each application's scenarios share one worker: it is seeded once there
        argv += ["-n", str(args.workers), "--dist", "loadgroup"]
    if args.profile:
        argv += ["--dr-profile", str(args.profile)]
    return argv


def _prepare_containers(profile: Profile) -> None:
    """Images with a local recipe are built (or found up to date) once, before the workers
    start; the others are the engine's to have or pull."""
    from drtests.containers.engine import engine_cli
    from drtests.containers.images import build_local_images, recipe_for

    local = [image for image in profile.containers.images() if recipe_for(image) is not None]
    if local:
        build_local_images(
            engine_cli(), local, lambda line: print(f"containers: {line}", flush=True)
        )


def _profile_check(args: argparse.Namespace, _: list[str]) -> int:
    profile = load_profile(args.path)
    objectives = ", ".join(
        f"{k} RTO {v.rto_seconds:.0f}s RPO {v.rpo_seconds:.0f}s"
        for k, v in profile.objectives.items()
    )
    print(f"profile {profile.name}: valid ({profile.environment}; {objectives})")
    return 0


def _ledger(args: argparse.Namespace, _: list[str]) -> int:
    """ledger [--all] · ledger revert — what a run left, and putting it back."""
    profile = load_profile(args.profile)
    ledger = FaultLedger(profile.state_dir.absolute() / "fault-ledger.jsonl")
    if args.action == "revert":
        from drtests.recovery import revert_leftovers
        from drtests.safety import SafetyRails

        safety = SafetyRails(
            profile,
            allow_destructive=args.allow_destructive,
            dry_run=args.dry_run,
            confirmation=args.confirm_production,
            destructive_flag="--allow-destructive",
            confirm_flag="--confirm-production",
        )
        lines = revert_leftovers(ledger, profile, safety) or ["nothing pending"]
        for line in lines:
            print(f"fault ledger: {Redactor(profile.secrets())(line)}")
        return 1 if ledger.pending() else 0
    entries = ledger.entries() if args.all else ledger.pending()
    if not entries:
        print("fault ledger: nothing pending" if not args.all else "fault ledger: empty")
        return 0
    from drtests.recovery import describe_target

    for e in entries:
        print(
            f"{e.fault_id}  {e.status:<13} {e.kind:<24} {e.target.get('environment')} "
            f"{describe_target(e.target)}  {e.description}"
        )
    return 1 if any(e.pending for e in entries) else 0


#: the action of ``drtests report`` each option belongs to
_REPORT_OPTION_ACTIONS = {
    "history": "report DIR…",
    "out": "report DIR…",
    "head": "report verify",
    "trust": "report verify",
    "key": "report sign",
    "cert": "report sign",
    "tsa": "report sign",
    "status": "report follow-up",
    "by": "report follow-up",
    "note": "report follow-up",
}


def _refuse_options_of_other_actions(args: argparse.Namespace) -> None:
    """An option the action does not read is an error, not silently ignored: ``report
    verify --key K`` would otherwise look like a check made with that key."""
    first = args.paths[0] if args.paths else ""
    action = f"report {first}" if first in ("verify", "sign", "follow-up") else "report DIR…"
    misplaced = [
        f"--{option} (it is for: {owner})"
        for option, owner in _REPORT_OPTION_ACTIONS.items()
        if owner != action and getattr(args, option) not in (None, False)
    ]
    if misplaced:
        raise DRError(f"drtests {action} does not take {', '.join(misplaced)}")


def _report(args: argparse.Namespace, _: list[str]) -> int:
    """report DIR… (re-render) · report verify DIR… · report sign DIR · report --history"""
    from drtests.evidence.reports import follow_up, history_report, rerender, verify_folder
    from drtests.evidence.signing import sign_run

    _refuse_options_of_other_actions(args)
    if args.paths and args.paths[0] == "follow-up":
        if len(args.paths) != 3 or not args.status or not args.by:
            raise DRError("usage: drtests report follow-up DIR FINDING-ID --status S --by NAME")
        head = follow_up(Path(args.paths[1]), args.paths[2], args.status, args.by, args.note or "")
        print(f"{args.paths[2]}: {args.status} ({args.by}); manifest head {head}")
        return 0
    if args.paths and args.paths[0] == "verify":
        folders = [Path(p) for p in args.paths[1:]]
        if not folders:
            raise DRError("report verify needs at least one run folder")
        return verify_folder(folders, args.head, args.trust)
    if args.paths and args.paths[0] == "sign":
        if len(args.paths) != 2 or not args.key or not args.cert:
            raise DRError(
                "usage: drtests report sign DIR --key KEY.pem --cert CERT.pem [--tsa URL]"
            )
        signed = sign_run(Path(args.paths[1]), args.key, args.cert, args.tsa)
        print(f"{args.paths[1]}: signed by {signed.signer}; manifest head {signed.head}")
        if args.tsa:
            print(f"PDF signature time-stamped by {args.tsa} (PAdES B-T)")
        print(f"signatures in {signed.folder} (checked by: drtests report verify DIR)")
        return 0
    folders = [Path(p) for p in args.paths]
    if not folders:
        raise DRError("report needs at least one run folder")
    if args.history:
        return history_report(folders, args.out or Path("reports/trend.html"))
    for folder in folders:
        head = rerender(folder)
        print(f"{folder}: re-rendered; manifest head {head}")
    return 0


def _objectstore(args: argparse.Namespace, _extra: list[str]) -> int:
    """objectstore baseline --out FILE · objectstore verify --expected FILE|--archive KEY —
    verify-data-integrity of a live location, at lake scale as the profile says."""
    import gzip
    import uuid

    from drtests.objectstore.archive import read_manifest
    from drtests.objectstore.core import S3_ERRORS
    from drtests.objectstore.integrity import dump_inventory, load_inventory, take_inventory
    from drtests.platform.kubernetes import KubernetesPlatform
    from drtests.procedures.objectstore import verify_lake

    profile, env, safety = _live_target(args)
    bucket = args.bucket or profile.buckets.data[0]
    endpoint = env.s3_primary
    location = f"s3://{bucket}/{args.prefix}"
    if args.action == "baseline":
        if args.out is None:
            raise DRError("objectstore baseline needs --out FILE")
        try:
            inventory = take_inventory(endpoint.client(), bucket, args.prefix)
        except S3_ERRORS as exc:
            raise DRError(f"{location}: {exc}") from None
        if not inventory:
            raise DRError(f"{location}: no object there (is --prefix right?); nothing recorded")
        args.out.write_bytes(gzip.compress(dump_inventory(inventory, location)))
        print(f"baseline of {location}: {len(inventory)} objects → {args.out}")
        return 0
    if args.archive:
        _archive, expected = read_manifest(endpoint.client(), profile.buckets.backups, args.archive)
    elif args.expected:
        try:
            recorded, expected = load_inventory(gzip.decompress(args.expected.read_bytes()))
        except (OSError, EOFError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DRError(
                f"{args.expected}: not a baseline from 'objectstore baseline' ({reason})"
            ) from None
        if recorded and recorded != location:
            raise DRError(
                f"{args.expected} is a baseline of {recorded}, not of {location} "
                "(--bucket, --prefix)"
            )
    else:
        raise DRError("objectstore verify needs --expected FILE or --archive KEY")
    platform = None
    if profile.objectstore.spark is not None:
        work = profile.objectstore.spark.work_uri
        if not work.startswith("file://"):  # the only place the verification writes
            safety.authorize(
                work.replace("s3a://", "s3://", 1), "write the verification's work files"
            )
        kube, services = profile.kubernetes, profile.services
        platform = KubernetesPlatform.connect(
            services.namespace,
            kube.workloads(services),
            safety.authorize,
            kubeconfig=kube.kubeconfig,
            context=kube.context,
        )
    run_id = f"verify-{uuid.uuid4().hex[:8]}"
    result = verify_lake(profile, endpoint, bucket, args.prefix, expected, run_id, platform)
    redact = Redactor(profile.secrets())
    print(redact(result.description))  # how it was listed and what decided each object
    return _print_checks([result], redact)


def _live_target(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from drtests.environments.live import live_environment
    from drtests.safety import SafetyRails

    profile = load_profile(args.profile, "live")
    env = live_environment(profile, profile.state_dir.absolute())
    safety = SafetyRails(
        profile,
        allow_destructive=args.allow_destructive,
        confirmation=args.confirm_production,
        destructive_flag="--allow-destructive",
        confirm_flag="--confirm-production",
    )
    return profile, env, safety


def _print_checks(results: list[Any], redact: Redactor | None = None) -> int:
    redact = redact or Redactor()  # URI passwords are masked even without a profile
    for r in results:
        if getattr(r, "not_run", None):
            print(redact(f"not run {r.name}: {r.not_run}"))
            continue
        state = "ok" if r.ok else "FAILED"
        print(redact(f"{state:<7} {r.name}" + (f": {r.error}" if r.error else "")))
        for f in r.findings[:10]:
            print(redact(f"          {f.severity}: {f.subject}: {f.detail}"))
        if len(r.findings) > 10:
            print(f"          … {len(r.findings) - 10} more")
    bad = [r.name for r in results if not r.ok]
    skipped = sum(1 for r in results if getattr(r, "not_run", None))
    print(
        f"{len(results) - len(bad) - skipped} of {len(results)} checks clean"
        + (f"; {skipped} not run" if skipped else "")
        + (f"; failing: {', '.join(bad)}" if bad else "")
    )
    return 1 if bad else 0


def _metastore(args: argparse.Namespace, _extra: list[str]) -> int:
    """metastore check [--repair] [--baseline FILE] · metastore msck DB.TABLE · metastore
    baseline --out FILE — Option 3 on a live metastore."""
    from drtests.metastore.checks import NO_BASELINE, CheckContext, run_checks
    from drtests.metastore.repair import msck_repair, repair_consistency
    from drtests.metastore.verify import (
        compare_fingerprints,
        load_baseline,
        save_baseline,
        take_baseline,
    )
    from drtests.postgres import connect
    from drtests.results import CheckResult
    from drtests.schema_fingerprint import compare_schema

    profile, env, safety = _live_target(args)
    where = env.pg_target(env.metastore_database)
    baseline = load_baseline(args.baseline)[0] if args.baseline else None
    s3 = env.s3_primary.client()
    with connect(env.postgres, env.metastore_database, autocommit=True) as conn:

        def checks() -> list[Any]:
            expected = baseline.tables_per_database if baseline else None
            objects = (baseline.objects or None) if baseline else None
            ctx = CheckContext(conn, profile.metastore.location_allow_list, expected, s3, objects)
            results = run_checks(ctx)
            if baseline is None:
                for name in ("fingerprints_match_baseline", "schema_matches_baseline"):
                    results.append(CheckResult(name, "against a baseline", not_run=NO_BASELINE))
                return results
            return [
                *results,
                compare_fingerprints(conn, baseline),
                compare_schema(conn, baseline.schema),
            ]

        if args.action == "baseline":
            if args.out is None:
                raise DRError("metastore baseline needs --out FILE")
            with conn.transaction():
                taken = take_baseline(conn)
            save_baseline(taken, where, args.out)
            tables = sum(taken.tables_per_database.values())
            print(
                f"baseline of {where}: {len(taken.tables_per_database)} databases, {tables} "
                f"tables, {len(taken.fingerprints)} metastore tables fingerprinted → {args.out}"
            )
            return 0
        if args.action == "check":
            if args.repair:
                if not args.dry_run:
                    safety.authorize(where, "repair the metastore")
                print(repair_consistency(conn, dry_run=args.dry_run).describe())
            return _print_checks(checks(), Redactor(profile.secrets()))
        database, _dot, table = (args.table or "").partition(".")
        if not database or not table:
            raise DRError("metastore msck needs DATABASE.TABLE")
        if not args.dry_run:
            safety.authorize(where, f"MSCK REPAIR TABLE {args.table}")
        try:
            report = msck_repair(
                conn,
                s3,
                database,
                table,
                args.mode.upper(),
                dry_run=args.dry_run,
                batch_size=args.batch_size,
            )
        except ValueError as exc:
            raise DRError(str(exc)) from None
        print(report.describe())
        for name, _values in report.plan.add[:20]:
            print(f"  {'would add' if args.dry_run else 'added'}: {name}")
        for _part_id, name in report.plan.drop[:20]:
            print(f"  {'would drop' if args.dry_run else 'dropped'}: {name}")
        for skipped in report.plan.skipped[:20]:
            print(f"  skipped: {skipped}")
        return 0


def _doctor(args: argparse.Namespace, _extra: list[str]) -> int:
    """Preflight before a game day: GO only when every check passes."""
    from drtests.doctor import run_doctor

    profile = load_profile(args.profile, "live")
    if profile.environment != "live":
        raise DRError(
            'doctor checks a live platform: pass --profile with environment = "live" '
            "(the embedded environment is created fresh by every run)"
        )
    from drtests.environments.live import live_environment
    from drtests.safety import SafetyRails

    # doctor only reads: its rails allow no write at all (S3 refused, PostgreSQL read-only)
    env = live_environment(profile, profile.state_dir.absolute(), SafetyRails(profile))
    code = _print_checks(run_doctor(profile, env), Redactor(profile.secrets()))
    print("GO: ready for the game day" if code == 0 else "NO-GO: fix the failing checks first")
    return code


def _containers(args: argparse.Namespace, _extra: list[str]) -> int:
    """containers build · containers check — the images and engine of containers mode."""
    from drtests.containers.engine import engine_cli, find_engine
    from drtests.containers.images import build_local_images, ensure_image
    from drtests.containers.probe import chosen, probe_clients

    profile = load_profile(args.profile, "containers")
    settings = profile.containers
    if args.action == "build":
        build_local_images(
            engine_cli(), settings.images(), lambda line: print(f"containers: {line}", flush=True)
        )
        return 0
    probes = probe_clients()
    for probe in probes:
        print(f"client {probe.describe()}")
    use = chosen(probes)
    print(f"images built with: {use.name if use else 'none (no client reaches an engine)'}")
    engine = find_engine(settings.docker_host, profile.state_dir.absolute() / "engine")
    try:
        print(f"engine used by the run: {engine.describe()}")
        client = engine.client()
        for image in settings.images():
            try:
                ensure_image(client, image, settings.pull_timeout_s)
            except DRError as exc:
                if image != settings.k3s_image:
                    raise
                print(f"image {image}: missing; the K3s scenarios will be skipped ({exc})")
                continue
            print(f"image {image}: present")
    finally:
        engine.close()
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    """The options the game day and the restore test share, in both spellings (the
    command's and the pytest plugin's)."""
    parser.add_argument(
        "--env",
        "--dr-env",
        choices=("local", "containers", "live"),
        default=None,
        help="where the platform runs (default: the profile's, else local)",
    )
    parser.add_argument(
        "--profile", "--dr-profile", type=Path, default=None, help="profile TOML file"
    )
    parser.add_argument(
        "--report-dir",
        "--dr-report-dir",
        type=Path,
        default=Path("reports"),
        help="evidence is written to REPORT_DIR/<run-id>/ (default: reports)",
    )
    parser.add_argument("--operator", "--dr-operator", default=None, help="who runs it (evidence)")
    parser.add_argument(
        "--scenarios",
        action="append",
        metavar="DIR",
        help="a folder of your own scenarios, run with the shipped ones (repeatable)",
    )
    parser.add_argument(
        "--no-shipped-scenarios",
        action="store_true",
        help="run only the folders given with --scenarios",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drtests", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gd = sub.add_parser(
        "gameday",
        help="run the DR game day and write its evidence",
        description="Run the DR game day: every scenario and negative control, then the "
        "evidence under REPORT_DIR/<run-id>/. Each option also has the pytest plugin's "
        "spelling (--dry-run is --dr-dry-run), so the two can be used alike.",
        epilog="Any other option goes to pytest, e.g. -k EXPR (select scenarios), -x (stop "
        "at the first failure), --dr-pushgateway URL, --dr-load, --dr-load-delay SECONDS; "
        "`pytest --help` lists the plugin's options under 'disaster-recovery game day'. "
        "Exit code 0 only when every scenario met its objectives and every negative "
        "control held.",
    )
    _common(gd)
    gd.add_argument(
        "--marker",
        default="gameday",
        help="pytest marker expression of the scenarios to run (default: gameday)",
    )
    gd.add_argument("-n", "--workers", type=int, default=2, help="parallel workers (default: 2)")
    gd.add_argument(
        "--dry-run",
        "--dr-dry-run",
        action="store_true",
        help="print the plan of every destructive step and perform no write",
    )
    gd.add_argument(
        "--allow-destructive",
        "--dr-allow-destructive",
        action="store_true",
        help="allow faults and restores on allow-listed live targets",
    )
    gd.add_argument(
        "--confirm-production",
        "--dr-confirm-production",
        metavar="PROFILE",
        default=None,
        help="typed confirmation for production targets: the profile's name",
    )
    gd.add_argument(
        "--participant",
        "--dr-participant",
        action="append",
        default=[],
        metavar="NAME:ROLE",
        help="a participant of the game day, for the sign-off block (repeatable)",
    )
    gd.add_argument(
        "--attest",
        "--dr-attest",
        action="append",
        default=[],
        metavar="ITEM=NAME[:ROLE]",
        help="attest a checklist item, e.g. stakeholders-notified='Jane Doe:IC' (repeatable)",
    )
    gd.set_defaults(run=_gameday)

    rt = sub.add_parser(
        "restore-test",
        help="restore the newest (or a random) backups into a scratch server and test the "
        "services on them; read-only on every source; exit 0 restorable, 1 finding, "
        "2 could not run",
    )
    _common(rt)
    rt.add_argument(
        "--component",
        default=None,
        help="comma-separated: metastore,airflow,mlflow,s3 (default: the profile's)",
    )
    rt.add_argument(
        "--select", choices=("latest", "random"), default=None, help="which recovery point"
    )
    rt.add_argument("--window", default=None, help="recovery points within WINDOW (7d, 36h)")
    rt.add_argument("--seed", type=int, default=None, help="seed of a random selection")
    rt.add_argument("-n", "--workers", type=int, default=1, help="parallel workers (default: 1)")
    rt.set_defaults(run=_restore_test)

    pc = sub.add_parser("profile", help="validate a profile file")
    pc.add_argument("action", choices=("check",), help="check: validate and summarise")
    pc.add_argument("path", type=Path, help="the profile TOML file")
    pc.set_defaults(run=_profile_check)

    rp = sub.add_parser(
        "report",
        help="re-render a run's reports from run.json; 'report verify DIR' checks integrity "
        "and signatures; 'report sign DIR' signs the PDF and the manifest head; "
        "'report --history DIR…' draws the trend across runs",
    )
    rp.add_argument(
        "paths",
        nargs="*",
        help="run folders; or 'verify' DIR…; or 'sign' DIR; or 'follow-up' DIR FINDING-ID",
    )
    rp.add_argument("--history", action="store_true", help="trend across the given runs")
    rp.add_argument(
        "--out",
        type=Path,
        help="with --history: where the trend report goes (default: reports/trend.html)",
    )
    rp.add_argument("--head", default=None, help="with verify: the manifest head recorded earlier")
    rp.add_argument(
        "--trust",
        type=Path,
        help="with verify: the CA or signer certificate (PEM) the signatures must chain to",
    )
    rp.add_argument(
        "--key",
        type=Path,
        help="with sign: the signer's private key (PEM, RSA or EC; its passphrase in "
        "$DRTESTS_KEY_PASSPHRASE)",
    )
    rp.add_argument("--cert", type=Path, help="with sign: the signer's certificate (PEM)")
    rp.add_argument(
        "--tsa",
        metavar="URL",
        help="with sign: an RFC 3161 time-stamping authority whose token the PDF signature "
        "carries (PAdES B-T); verify then checks it against --trust",
    )
    rp.add_argument("--status", help="with follow-up: open, in-progress, closed, risk-accepted")
    rp.add_argument("--by", help="with follow-up: who records it")
    rp.add_argument("--note", help="with follow-up: what was done")
    rp.set_defaults(run=_report)

    ms = sub.add_parser(
        "metastore",
        help="Option 3 on the profile's metastore: checks, --repair, MSCK REPAIR TABLE; "
        "baseline --out FILE records what check --baseline FILE compares with",
    )
    ms.add_argument(
        "action",
        choices=("check", "msck", "baseline"),
        help="check: the consistency checks; msck: MSCK REPAIR TABLE; baseline: write one",
    )
    ms.add_argument("table", nargs="?", help="with msck: DATABASE.TABLE")
    ms.add_argument("--profile", type=Path, required=True, help="profile TOML file")
    ms.add_argument("--repair", action="store_true", help="with check: repair what is safe")
    ms.add_argument(
        "--baseline",
        type=Path,
        help="with check: a baseline file to compare table counts, content and schema with",
    )
    ms.add_argument("--out", type=Path, help="with baseline: where to write it")
    ms.add_argument(
        "--mode",
        choices=("add", "drop", "sync"),
        default="add",
        help="msck: add missing partitions, drop stale ones, or both (default: add)",
    )
    ms.add_argument(
        "--batch-size", type=int, default=1000, help="msck: partitions per batch (1000)"
    )
    ms.add_argument("--dry-run", action="store_true", help="list what would change; write nothing")
    ms.add_argument(
        "--allow-destructive", action="store_true", help="allow writes to an allow-listed target"
    )
    ms.add_argument(
        "--confirm-production",
        metavar="PROFILE",
        default=None,
        help="typed confirmation for production targets: the profile's name",
    )
    ms.set_defaults(run=_metastore)

    ob = sub.add_parser(
        "objectstore",
        help="verify-data-integrity of a live S3 location against a baseline or an archive "
        "manifest, by S3 Inventory and on Spark when the profile configures them",
    )
    ob.add_argument(
        "action",
        choices=("baseline", "verify"),
        help="baseline: record the location's state; verify: compare it with one",
    )
    ob.add_argument("--profile", type=Path, required=True, help="profile TOML file")
    ob.add_argument("--bucket", help="the bucket (default: the profile's first data bucket)")
    ob.add_argument("--prefix", default="", help="the location within the bucket")
    ob.add_argument("--out", type=Path, help="with baseline: where to write it (gzip'd JSON lines)")
    ob.add_argument("--expected", type=Path, help="with verify: a baseline file")
    ob.add_argument(
        "--archive", help="with verify: an archive key in the backups bucket (Option B)"
    )
    ob.add_argument(
        "--allow-destructive",
        "--dr-allow-destructive",
        action="store_true",
        help="the Spark path writes its work files to [objectstore.spark] work_uri",
    )
    ob.add_argument(
        "--confirm-production",
        "--dr-confirm-production",
        default=None,
        help="the profile's name, when it says production = true",
    )
    ob.set_defaults(run=_objectstore)

    dc = sub.add_parser("doctor", help="preflight of a live platform: go / no-go")
    dc.add_argument("--profile", type=Path, required=True, help="profile TOML file")
    dc.set_defaults(run=_doctor)
    ct = sub.add_parser(
        "containers",
        help="containers mode: 'build' the profile's images that have local recipes "
        "(Debian packages); 'check' that the engine answers and every image is there",
    )
    ct.add_argument(
        "action", choices=("build", "check"), help="build the local images, or check them"
    )
    ct.add_argument("--profile", type=Path, default=None, help="profile TOML file")
    ct.set_defaults(run=_containers)
    lg = sub.add_parser("ledger", help="show faults not yet reverted, or revert them")
    lg.add_argument(
        "action",
        nargs="?",
        choices=("show", "revert"),
        default="show",
        help="show the pending faults (default), or revert them",
    )
    lg.add_argument("--profile", type=Path, default=None, help="profile TOML file")
    lg.add_argument("--all", action="store_true", help="every entry, reverted ones too")
    lg.add_argument("--dry-run", action="store_true", help="with revert: say what, change nothing")
    lg.add_argument(
        "--allow-destructive", action="store_true", help="allow the reverts on live targets"
    )
    lg.add_argument(
        "--confirm-production",
        metavar="PROFILE",
        default=None,
        help="typed confirmation for production targets: the profile's name",
    )
    lg.set_defaults(run=_ledger)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("gameday", "restore-test"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code: int = args.run(args, extra)
        sys.stdout.flush()  # inside the try: a closed pipe fails here, not at exit
    except DRError as exc:
        print(f"drtests: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("drtests: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (``| head``) stopped reading: not the command's failure; Python's
        # recipe, so that the interpreter's own flush at exit does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
