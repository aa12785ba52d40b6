"""The ``awesomme`` command: run the platform, seed demo data, report status, generate phantoms."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from awesomme import __version__
from awesomme.core.config import Settings, load_settings

__all__ = ["main"]


def _settings_with_secrets() -> Settings:
    """Settings once ``var/secrets.env`` exists (created on first use with random Orthanc credentials)."""
    from awesomme.runtime.orthanc import ensure_secrets

    ensure_secrets(load_settings())
    return load_settings()


def cmd_serve(_args: argparse.Namespace) -> int:
    from awesomme.runtime.allocator import preload_environment
    from awesomme.runtime.hardening import secure_installation

    settings = load_settings()
    environment = preload_environment(settings.allocator, os.environ)
    if environment is not None:  # the allocator is chosen when a process starts: start again with it (same pid)
        os.execve(sys.executable, [sys.executable, "-m", "awesomme.cli", *sys.argv[1:]], environment)  # noqa: S606
    # Owner-only var/, keys encrypted at rest; migrates the schema (a first start creates it, later ones upgrade it)
    for line in secure_installation(settings).lines:
        print(f"start: {line}", flush=True)
    _log_to_stderr()
    runner = _start_batch_runner(settings)
    try:
        _run_server(settings)
    finally:
        runner.stop()
    return 0


def _start_batch_runner(settings: Settings) -> Any:
    """The batch runner thread (it starts the Dask cluster at the first batch): started here, from the entry point,
    never at import (worker processes are spawned). The app first: it configures MONAI Label before anything
    imports it."""
    import awesomme.server  # noqa: F401
    from awesomme.services.batch_runner import start_runner

    return start_runner(settings)


def _run_server(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        "awesomme.server:app",
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        # X-Forwarded-* count only from AWESOMME_TRUSTED_PROXIES (uvicorn's default trusts any local client).
        proxy_headers=bool(settings.trusted_proxy_list),
        forwarded_allow_ips=settings.trusted_proxy_list or None,
    )


def _log_to_stderr() -> None:
    """The package's events (stored SEGs, inference phases, Orthanc calls per request) in the server's log."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(name)s] [%(levelname)s] %(message)s"))
    package = logging.getLogger("awesomme")
    package.addHandler(handler)
    package.setLevel(logging.INFO)


def cmd_up(_args: argparse.Namespace) -> int:
    from awesomme.orthanc.client import OrthancClient
    from awesomme.runtime.platform import base_url, start_all
    from awesomme.seeding import DEMO_ADMIN, ensure_demo_admin, ensure_demo_cohorts, seed_demo

    settings = _settings_with_secrets()
    started = start_all(settings)
    for line in started.changes:
        print(f"start: {line}")
    seeded = seed_demo(settings, OrthancClient(settings))
    password_file = ensure_demo_admin(settings)
    cohorts = ensure_demo_cohorts(seeded)
    login = (
        f"user {DEMO_ADMIN}, password in {password_file} (tokens: POST {base_url(settings)}/api/auth/token)"
        if password_file.is_file()
        else f"the demo admin's password file {password_file} is gone: use `awesomme user reset-password`"
    )
    url = base_url(settings)
    mr = sum(s.kind == "osteosarcoma-mr" for s in seeded)
    print(
        f"""
AWESOMME {__version__} is running (server pid {started.server_pid}, Orthanc pid {started.orthanc_pid}).
  Open            {url}/viewer/          (the AWESOMME viewer: our OHIF mode and panels)
  Also            {url}/ohif/            (MONAI Label's bundled viewer)
  API reference   {url}/docs
  Health          {url}/api/health
  Demo data       {len(seeded)} series ({mr} osteosarcoma MR, {len(seeded) - mr} chest CT)
                  in the cohorts {", ".join(sorted(cohorts))} (the demo admin administers both)
  Log in          {login}
                  browsers: {url}/login
  Logs            {settings.var_dir / "log" / "server.log"}, {settings.var_dir / "orthanc" / "orthanc.log"}
  Stop            make stop
""".rstrip()
    )
    return 0


def cmd_down(_args: argparse.Namespace) -> int:
    from awesomme.runtime.platform import stop_all

    stopped = stop_all(load_settings())
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    from awesomme.core.db import migrate

    migrate(load_settings().db_url)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    import time

    from awesomme.core import audit
    from awesomme.core.db import session_scope

    started = time.perf_counter()
    # The chain in the database, and its head against the anchor kept outside it (var/audit/anchor).
    anchor = audit.Anchor.of(load_settings())
    with session_scope() as session:
        verdict = audit.verify(session, anchor)
    took = time.perf_counter() - started
    if verdict.ok:
        anchored = f", anchored up to event {verdict.anchored_id}" if verdict.anchored_id else ""
        print(f"audit journal intact: {verdict.events} events verified in {took:.2f} s{anchored}")
        return 0
    where = f" at event {verdict.first_bad_id}" if verdict.first_bad_id else ""
    print(f"audit journal BROKEN{where}: {verdict.problem}", file=sys.stderr)
    return 3


def cmd_access_table(_args: argparse.Namespace) -> int:
    from awesomme.api.access import access_table_markdown

    print(access_table_markdown(), end="")
    return 0


def cmd_seed_demo(_args: argparse.Namespace) -> int:
    from awesomme.orthanc.client import OrthancClient
    from awesomme.seeding import ensure_demo_admin, ensure_demo_cohorts, seed_demo

    settings = load_settings()
    seeded = seed_demo(settings, OrthancClient(settings))
    ensure_demo_admin(settings)
    ensure_demo_cohorts(seeded)
    for series in seeded:
        print(f"{series.kind} seed {series.seed}: series {series.series_uid}")
    return 0


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def cmd_status(args: argparse.Namespace) -> int:
    from awesomme.orthanc.client import OrthancClient
    from awesomme.runtime.orthanc import ORTHANC_BINARY
    from awesomme.runtime.platform import SERVER_COMMAND, health_ok
    from awesomme.runtime.processes import running_pid

    settings = load_settings()
    orthanc_version = None
    ambiguous: dict[str, list[str]] | None = None
    with contextlib.suppress(Exception):
        orthanc = OrthancClient(settings)
        orthanc_version = orthanc.system().get("Version")
        ambiguous = orthanc.ambiguous_series()
    report: dict[str, dict[str, Any]] = {
        "services": {
            "server": {
                "pid": running_pid(settings.var_dir / "server.pid", SERVER_COMMAND),
                "healthy": health_ok(settings),
            },
            "orthanc": {
                "pid": running_pid(settings.var_dir / "orthanc" / "orthanc.pid", ORTHANC_BINARY),
                "answers": orthanc_version is not None,
            },
        },
        "versions": {
            "awesomme": __version__,
            "orthanc": orthanc_version,
            **{name: _package_version(name) for name in ("monailabel", "monai", "torch", "pydicom", "highdicom")},
        },
        "disk_bytes": {
            "orthanc": _disk_bytes(settings.var_dir / "orthanc" / "storage"),
            "cache": _disk_bytes(settings.cache_dir),
            "database": _disk_bytes(Path(settings.db_url.removeprefix("sqlite:///")))
            if settings.db_url.startswith("sqlite")
            else None,
        },
        # series UIDs stored under several studies: their routes answer 409 until a platform admin resolves them
        "ambiguous_series": {uid: ", ".join(studies) for uid, studies in (ambiguous or {}).items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for section, values in report.items():
            print(f"{section}:")
            for key, value in values.items():
                print(f"  {key}: {value}")
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if args.password:
        return str(args.password)
    raise ValueError("give --password or --password-stdin")


def _journal(session: Any, action: str, target: str, params: dict[str, Any] | None = None) -> None:
    """Commands act as the machine account that ran them, from the machine itself."""
    from awesomme.core import audit

    audit.record(session, action, target=target, params=params, actor=f"cli:{getpass.getuser()}"[:64], source="local")


def cmd_user(args: argparse.Namespace) -> int:
    from awesomme.core.db import migrate, session_scope
    from awesomme.core.errors import AwesommeError
    from awesomme.models import User
    from awesomme.services import identity

    settings = load_settings()
    migrate(settings.db_url)
    args.username = args.username or args.name
    if args.action != "list" and not args.username:
        raise ValueError(f"user {args.action} needs a username")
    try:
        with session_scope() as session:
            if args.action == "create":
                user = identity.create_user(session, settings, args.username, _password(args), admin=args.admin)
                _journal(session, "user.create", args.username, {"platform_admin": user.is_platform_admin})
                print(f"created {'platform admin' if user.is_platform_admin else 'user'} {user.username}")
            elif args.action == "disable":
                identity.disable_user(session, args.username)
                _journal(session, "user.disable", args.username)
                print(f"disabled {args.username}; their tokens no longer work")
            elif args.action == "reset-password":
                identity.reset_password(session, settings, args.username, _password(args))
                _journal(session, "user.password.reset", args.username)
                print(f"password of {args.username} reset; their tokens no longer work")
            else:
                for user in session.query(User).order_by(User.username):
                    role = "platform admin" if user.is_platform_admin else "user"
                    print(f"{user.username}\t{role}\t{'active' if user.is_active else 'disabled'}")
    except AwesommeError as error:
        raise ValueError(str(error)) from error
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Personal access tokens of any user, from the server's machine (as a platform admin would, journaled)."""
    from sqlalchemy import select

    from awesomme.core.db import migrate, session_scope
    from awesomme.core.errors import AwesommeError
    from awesomme.core.visibility import load_principal
    from awesomme.models import PersonalAccessToken, User
    from awesomme.services import personal_tokens

    settings = load_settings()
    migrate(settings.db_url)
    try:
        with session_scope() as session:
            user = session.scalar(select(User).where(User.username == args.username)) if args.username else None
            if args.username and user is None:
                raise ValueError(f"no user {args.username}")
            if args.action == "create":
                if user is None or not args.name or args.days is None:
                    raise ValueError("token create needs --username, --name and --days")
                created = personal_tokens.create(
                    session,
                    settings,
                    user,
                    load_principal(session, user),
                    args.name,
                    args.days,
                    args.cohort,
                    args.read_only,
                )
                record = created.record
                params = {"pat_id": record.id, "name": record.name, "days": args.days, "read_only": args.read_only}
                _journal(session, "pat.create", f"pat:{record.id}", params)
                print(f"token {record.id} of {user.username}, expires {record.expires_at:%Y-%m-%d %H:%M} UTC")
                print(created.token)  # shown once: only its hash is stored
            elif args.action == "revoke":
                if args.id is None:
                    raise ValueError("token revoke needs the token's id")
                found = session.get(PersonalAccessToken, args.id)
                if found is None or (user is not None and found.user_id != user.id):
                    raise ValueError(f"no personal access token {args.id}")
                record = personal_tokens.revoke(session, found.user_id, args.id)
                _journal(session, "pat.revoke", f"pat:{record.id}", {"pat_id": record.id})
                print(f"revoked token {record.id}")
            else:
                owners = {u.id: u.username for u in session.scalars(select(User))}
                query = select(PersonalAccessToken).order_by(PersonalAccessToken.id)
                if user is not None:
                    query = query.where(PersonalAccessToken.user_id == user.id)
                for token in session.scalars(query):
                    used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never used"
                    scope = f"cohort {token.cohort_id}" if token.cohort_id else "all my cohorts"
                    access = "read-only" if token.read_only else "read-write"
                    state = personal_tokens.state_of(token)
                    print(f"{token.id}\t{owners.get(token.user_id)}\t{token.name}\t{state}\t{scope}\t{access}\t{used}")
    except AwesommeError as error:
        raise ValueError(str(error)) from error
    return 0


def cmd_keys(_args: argparse.Namespace) -> int:
    from awesomme.core.db import migrate, session_scope
    from awesomme.services import identity

    settings = load_settings()
    migrate(settings.db_url)
    with session_scope() as session:
        kid = identity.rotate_keys(session, settings)
        _journal(session, "keys.rotate", kid)
    print(f"new signing key {kid}; tokens signed by the previous key stay valid until they expire")
    return 0


def _shape(text: str) -> tuple[int, int, int]:
    try:
        slices, rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"shape must be SLICESxROWSxCOLS, e.g. 16x512x512, not {text!r}") from error
    if min(slices, rows, cols) < 1:
        raise argparse.ArgumentTypeError("every dimension of the shape must be at least 1")
    return slices, rows, cols


def _batch_api(args: argparse.Namespace) -> Any:
    """An HTTP client of the running server, with the personal access token of AWESOMME_TOKEN (never an argument:
    a command line is visible to other users)."""
    import httpx

    token = os.environ.get("AWESOMME_TOKEN", "")
    if not token:
        raise ValueError("set AWESOMME_TOKEN to a personal access token (awesomme token create)")
    settings = load_settings()
    server = args.server or f"http://{settings.host}:{settings.port}"
    return httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=120)


def _answer(reply: Any, *expected: int) -> Any:
    if reply.status_code not in expected:
        try:
            detail = reply.json().get("detail", reply.text)
        except ValueError:
            detail = reply.text
        raise ValueError(f"the server answered {reply.status_code}: {str(detail)[:500]}")
    return reply.json()


def _batch_body(args: argparse.Namespace) -> dict[str, Any]:
    seg = {"description": args.seg_description, "tag": args.seg_tag, "author": args.seg_author}
    selection = {"modality": args.modality, "series_number": args.series_number, "description": args.match}
    body: dict[str, Any] = {
        "cohort": args.cohort,
        "kind": args.kind,
        "model": args.model,
        "preset": args.preset,
        "input_tag": args.input_tag,
        "selection": {key: value for key, value in selection.items() if value is not None},
        "description": args.description,
        "tag": args.tag,
        "dry_run": args.dry_run,
    }
    if any(value is not None for value in seg.values()):
        body["seg"] = {key: value for key, value in seg.items() if value is not None}
    return {key: value for key, value in body.items() if value is not None}


def _watch(client: Any, batch_id: int, poll_s: float = 1.0) -> dict[str, Any]:
    """A progress bar of the batch's finished items until it is done or cancelled."""
    import time

    from tqdm import tqdm

    status = _answer(client.get(f"/api/batches/{batch_id}"), 200)
    with tqdm(total=status["total"], desc=f"batch {batch_id}", unit="series") as bar:
        while True:
            counts = status["counts"]
            bar.n = counts["done"] + counts["failed"]
            bar.set_postfix(status=status["status"], failed=counts["failed"], eta_s=status["eta_s"])
            bar.refresh()
            if status["status"] in ("done", "cancelled"):
                return dict(status)
            time.sleep(poll_s)
            status = _answer(client.get(f"/api/batches/{batch_id}"), 200)


def cmd_batch(args: argparse.Namespace) -> int:
    with _batch_api(args) as client:
        if args.action == "list":
            if args.cohort is None:
                raise ValueError("batch list: give --cohort")
            for batch in _answer(client.get("/api/batches", params={"cohort": args.cohort}), 200):
                counts = batch["counts"]
                print(
                    f"{batch['id']}\t{batch['kind']}\t{batch['status']}\tdone {counts['done']}/{batch['total']}"
                    f"\tfailed {counts['failed']}\t{batch['tag']}\t{batch['description']}"
                )
            return 0
        if args.action == "watch":
            if args.id is None:
                raise ValueError("batch watch: give the batch id")
            status = _watch(client, args.id)
        else:
            if args.cohort is None or args.kind is None:
                raise ValueError("batch start: give --cohort and --kind")
            answer = _answer(client.post("/api/batches", json=_batch_body(args)), 200, 202)
            if args.dry_run:
                print(json.dumps(answer, indent=2))
                return 0
            print(f"batch {answer['id']} started", flush=True)
            if not args.watch:
                return 0
            status = _watch(client, answer["id"])
        failed = _answer(client.get(f"/api/batches/{status['id']}/items", params={"status": "failed"}), 200)
        for item in failed:
            print(f"failed: {item['series_uid']}: {item['error']}", file=sys.stderr)
        return 0 if status["status"] == "done" and not failed else 2


def cmd_pacs(args: argparse.Namespace) -> int:
    """The hospital PACS through the running server's /api/pacs (token: AWESOMME_TOKEN)."""
    import time

    with _batch_api(args) as client:
        if args.action == "peers":
            for peer in _answer(client.get("/api/pacs/peers"), 200):
                print(f"{peer['name']}\t{peer['ae_title']}@{peer['host']}:{peer['port']}\t{peer['retrieve']}"
                      f"\tcohorts {','.join(map(str, peer['cohorts']))}\tmax {peer['max_studies']} studies, "
                      f"{peer['max_instances']} instances")  # fmt: skip
            return 0
        if not args.peer:
            raise ValueError(f"pacs {args.action}: give the peer's name")
        if args.action == "echo":
            answer = _answer(client.post(f"/api/pacs/peers/{args.peer}/echo"), 200)
            print(f"{answer['peer']}: {answer['status']} ({answer['round_trip_ms']} ms)")
            return 0
        if args.action == "query":
            keys = {"patient_id": args.patient_id, "accession_number": args.accession_number,
                    "study_date_from": args.date_from, "study_date_to": args.date_to, "modality": args.modality,
                    "study_uid": args.study_uid}  # fmt: skip
            body = {key: value for key, value in keys.items() if value is not None}
            print(json.dumps(_answer(client.post(f"/api/pacs/{args.peer}/query", json=body), 200), indent=2))
            return 0
        if args.cohort is None or not args.series:
            raise ValueError("pacs retrieve: give --cohort and at least one --series")
        body = {"cohort": args.cohort, "series_uids": args.series, "pseudonym": args.pseudonym}
        job = _answer(client.post(f"/api/pacs/{args.peer}/retrieve", json=body), 202)
        print(f"import {job['id']} started", flush=True)
        while (report := _answer(client.get(f"/api/imports/{job['id']}"), 200))["status"] == "running":
            time.sleep(1.0)
        for item in report["items"]:
            print(f"{item.get('series_uid') or item.get('file')}\t{item.get('status') or item.get('error')}")
        if report["status"] != "done":
            print(f"import {job['id']} {report['status']}: {report['error']}", file=sys.stderr)
            return 2
        if args.mapping and report["mapping"] == "ready":
            mapping = client.get(f"/api/imports/{job['id']}/mapping.csv")
            if mapping.status_code != 200:
                _answer(mapping, 200)
            fd = os.open(args.mapping, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(mapping.content)
            print(f"identity map written to {args.mapping}")
        return 0


def cmd_phantom(args: argparse.Namespace) -> int:
    from awesomme.phantoms import generate_patient

    patient = generate_patient(args.kind, args.seed, Path(args.out), shape=args.shape)
    print(f"{patient.kind} seed {patient.seed}: {len(patient.dicom_files)} instances, series {patient.series_uid}")
    print(f"  DICOM  {Path(args.out) / 'dicom'}\n  truth  {Path(args.out) / 'truth'}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from awesomme.runtime.import_client import run_import
    from awesomme.runtime.platform import base_url

    server = args.server or base_url(load_settings())
    return run_import(server, args.token, args.cohort, args.kind, args.paths, args.sheet, args.mapping)


def build_parser() -> argparse.ArgumentParser:
    from awesomme.phantoms import KINDS

    parser = argparse.ArgumentParser(prog="awesomme", description=__doc__)
    parser.add_argument("--version", action="version", version=f"awesomme {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the server in the foreground").set_defaults(func=cmd_serve)
    commands.add_parser("up", help="start Orthanc, the database and the server, seed demo data").set_defaults(
        func=cmd_up
    )
    commands.add_parser("down", help="stop what `up` started").set_defaults(func=cmd_down)
    commands.add_parser("migrate", help="create or upgrade the database schema").set_defaults(func=cmd_migrate)
    audit_command = commands.add_parser("audit", help="check the audit journal's hash chain")
    audit_command.add_argument("action", choices=["verify"])
    audit_command.set_defaults(func=cmd_audit)
    commands.add_parser("access-table", help="print who may call which route (markdown)").set_defaults(
        func=cmd_access_table
    )
    commands.add_parser("seed-demo", help="store the demo phantom patients in Orthanc").set_defaults(func=cmd_seed_demo)
    status = commands.add_parser("status", help="services, versions and disk use")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    user = commands.add_parser("user", help="platform accounts")
    user.add_argument("action", choices=["create", "list", "disable", "reset-password"])
    user.add_argument("name", nargs="?", help="the username (or --username)")
    user.add_argument("--username")
    user.add_argument("--password", help="prefer --password-stdin: a command line is visible to other users")
    user.add_argument("--password-stdin", action="store_true")
    user.add_argument("--admin", action="store_true", help="a platform admin")
    user.set_defaults(func=cmd_user)
    token = commands.add_parser("token", help="personal access tokens for scripts")
    token.add_argument("action", choices=["create", "list", "revoke"])
    token.add_argument("id", nargs="?", type=int, help="the token to revoke")
    token.add_argument("--username", help="whose tokens (create: required; list: all users' if absent)")
    token.add_argument("--name", help="what the token is for")
    token.add_argument("--days", type=int, help="its lifetime in days (at most AWESOMME_PAT_MAX_DAYS)")
    token.add_argument("--cohort", type=int, help="act only in this cohort (the user's)")
    token.add_argument("--read-only", action="store_true", help="GET, HEAD and POST /activelearning/ only")
    token.set_defaults(func=cmd_token)
    keys = commands.add_parser("keys", help="token signing keys")
    keys.add_argument("action", choices=["rotate"])
    keys.set_defaults(func=cmd_keys)
    batch = commands.add_parser("batch", help="cohort batches on the running server (token: AWESOMME_TOKEN)")
    batch.add_argument("action", choices=["start", "watch", "list"])
    batch.add_argument("id", nargs="?", type=int, help="the batch to watch")
    batch.add_argument("--server", help="the server's URL (default: this installation's)")
    batch.add_argument("--cohort", type=int)
    batch.add_argument("--kind", choices=["segmentation", "radiomics", "classification"])
    batch.add_argument("--model", help="segmentation or classification model")
    batch.add_argument("--preset", help="radiomics preset (<name> or <name>@<version>)")
    batch.add_argument("--seg-description", help="radiomics: the SEG of each series with this description")
    batch.add_argument("--seg-tag", help="radiomics: the SEG with this tag")
    batch.add_argument("--seg-author", help="radiomics: the SEG of this author")
    batch.add_argument("--input-tag", help="classification: the feature sets with this tag")
    batch.add_argument("--modality", choices=["CT", "MR"])
    batch.add_argument("--series-number", type=int)
    batch.add_argument("--match", help="a regular expression the series description must contain")
    batch.add_argument("--description", default="", help="the outputs' description")
    batch.add_argument("--tag", default="", help="the outputs' tag")
    batch.add_argument("--dry-run", action="store_true", help="print what would run, per patient; start nothing")
    batch.add_argument("--watch", action="store_true", help="start: then show a progress bar until it ends")
    batch.set_defaults(func=cmd_batch)
    pacs = commands.add_parser("pacs", help="hospital PACS peers on the running server (token: AWESOMME_TOKEN)")
    pacs.add_argument("action", choices=["peers", "echo", "query", "retrieve"])
    pacs.add_argument("peer", nargs="?", help="the peer's name")
    pacs.add_argument("--server", help="the server's URL (default: this installation's)")
    pacs.add_argument("--patient-id")
    pacs.add_argument("--accession-number")
    pacs.add_argument("--date-from", help="YYYYMMDD")
    pacs.add_argument("--date-to", help="YYYYMMDD")
    pacs.add_argument("--modality")
    pacs.add_argument("--study-uid", help="query: that study's series")
    pacs.add_argument("--cohort", help="retrieve: the target cohort's id or name")
    pacs.add_argument("--series", action="append", default=[], help="retrieve: a series UID (repeat for more)")
    pacs.add_argument("--pseudonym", help="retrieve: the patient's pseudonym")
    pacs.add_argument("--mapping", help="retrieve: write the identity map here (a new file; downloadable once)")
    pacs.set_defaults(func=cmd_pacs)
    phantom = commands.add_parser("phantom", help="write one synthetic patient (DICOM + ground truth)")
    phantom.add_argument("--kind", required=True, choices=KINDS)
    phantom.add_argument("--seed", required=True, type=int)
    phantom.add_argument("--out", required=True)
    phantom.add_argument("--shape", type=_shape, default=None, help="SLICESxROWSxCOLS")
    phantom.set_defaults(func=cmd_phantom)
    importer = commands.add_parser("import", help="import DICOM or legacy NIfTI into a cohort (through the API)")
    importer.add_argument("kind", choices=("dicom", "nifti"))
    importer.add_argument("paths", nargs="+", help="files, folders or one zip")
    importer.add_argument("--cohort", required=True, help="the target cohort's id or name")
    importer.add_argument("--sheet", help="nifti: the CSV metadata sheet")
    importer.add_argument("--mapping", help="write the identity map here (it can be downloaded once)")
    importer.add_argument("--server", help="the platform's URL (default: this machine's)")
    importer.add_argument("--token", default="", help="a personal access token (default: $AWESOMME_TOKEN)")
    importer.set_defaults(func=cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(0o077)  # before anything writes: what we and our children create under var/ is owner-only
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (RuntimeError, TimeoutError, ValueError) as error:
        print(f"awesomme {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
