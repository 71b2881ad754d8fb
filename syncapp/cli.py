"""The ``syncapp`` command line: wires config, engine, remotes and (without a subcommand) the UI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from syncapp import __version__
from syncapp.config import (
    Config,
    check_secrets,
    find_config_path,
    load_config,
    parse_config,
    secret_names,
)
from syncapp.engine import default_state_path
from syncapp.engine.guard import deleted_on_remote
from syncapp.engine.notes import read_tally
from syncapp.errors import ConfigError, LocalWriteError, StateError, SyncappError
from syncapp.headless import EXIT_FAILED, EXIT_OK, run_engine
from syncapp.headless import EventPrinter as EventPrinter  # re-exported
from syncapp.headless import format_event as format_event  # re-exported
from syncapp.headless import summarize as summarize  # re-exported
from syncapp.versionscmd import cmd_versions

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="syncapp",
        description="Live folder-to-remote sync (WebDAV, S3, HTTP). "
        "Without a command, opens the terminal UI.",
    )
    p.add_argument("--version", action="version", version=f"syncapp {__version__}")
    p.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $SYNCAPP_CONFIG, else the user config dir)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="sync every folder, then keep watching (headless)")
    run.add_argument("--once", action="store_true", help="sync once and exit (0: all in sync)")
    run.add_argument("--json", action="store_true", help="one JSON event per line")
    run.add_argument(
        "--dry-run", action="store_true", help="print what would change; change nothing"
    )
    run.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="let deletes through even when they trip a folder's max_delete guard",
    )
    run.add_argument("--bwlimit", default="", metavar="RATE", help='global limit, e.g. "2MiB/s"')

    st = sub.add_parser("status", help="what the state database knows, per folder")
    st.add_argument("folder", nargs="?", help="only this folder")
    st.add_argument("--pending", action="store_true", help="list every path not in sync, and why")
    st.add_argument("--json", action="store_true", help="JSON output")

    why = sub.add_parser("why", help="why is a path (not) synced?")
    why.add_argument("folder")
    why.add_argument("path", help="relative to the folder, or absolute inside it")
    why.add_argument("--json", action="store_true")

    ver = sub.add_parser("versions", help="list the kept remote versions of a file")
    ver.add_argument("folder")
    ver.add_argument("path", help="relative to the folder, or absolute inside it")
    ver.add_argument("--json", action="store_true")

    res = sub.add_parser("restore", help="write a kept version of a file back locally")
    res.add_argument("folder")
    res.add_argument("path", help="relative to the folder, or absolute inside it")
    res.add_argument(
        "--at", metavar="TIME", help="newest version at or before TIME (e.g. 2026-11-26T17:30)"
    )
    res.add_argument("--to", metavar="DEST", help="write here instead of the file's own place")

    rem = sub.add_parser("remotes", help="each remote and what its server was seen to do")
    rem.add_argument("--probe", action="store_true", help="ask every server again now")
    rem.add_argument("--json", action="store_true", help="one JSON object per remote")

    state = sub.add_parser("state", help="where the state database is; --reset moves it aside")
    state.add_argument(
        "--reset",
        action="store_true",
        help="move a damaged state database aside; the next run adopts what is on the remote",
    )

    sub.add_parser("start", help="run the engine in the background (output in engine.log)")
    sub.add_parser("stop", help="stop the background engine (or any `syncapp run` on this state)")
    sub.add_parser(
        "reload", help="the running engine reads its config file again (after editing it by hand)"
    )
    fold = sub.add_parser(
        "folder", help="add or remove a folder (through the running engine, else in the config)"
    )
    fold_sub = fold.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = fold_sub.add_parser("add", help="sync PATH to a remote as folder NAME")
    add.add_argument("name")
    add.add_argument("path")
    add.add_argument("--remote", required=True, help="the remote's name in the config")
    add.add_argument("--remote-path", help="where on the remote (default: PATH's base name)")
    fold_sub.add_parser(
        "remove", help="stop syncing a folder, drop it from the config (no file is deleted)"
    ).add_argument("name")
    for action, words in (
        ("pause", "pause a folder of the running engine"),
        ("resume", "resume a paused folder of the running engine"),
        ("rescan", "rescan a folder of the running engine now"),
    ):
        sub.add_parser(action, help=words).add_argument("folder")
    svc = sub.add_parser("service", help="install or remove a systemd user service")
    svc.add_argument("action", choices=["install", "uninstall"])

    demo = sub.add_parser(
        "demo", help="sync a demo folder live to an embedded WebDAV server (no setup needed)"
    )
    demo.add_argument("--headless", action="store_true", help="log lines instead of the UI")
    demo.add_argument(
        "--port", type=int, default=0, help="port of the embedded server (default: free)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Like the engine's own lines (time first); the logger's name only at debug level.
    level = os.environ.get("SYNCAPP_LOGLEVEL", "WARNING")
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if level == "DEBUG" else None
    logging.basicConfig(
        level=level,
        format=fmt or "%(asctime)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "why":
            return cmd_why(args)
        if args.command == "state":
            return cmd_state(args)
        if args.command in ("versions", "restore"):
            return asyncio.run(cmd_versions(args))
        if args.command == "remotes":
            from syncapp.remotelist import list_remotes

            config = load_config(args.config)
            return asyncio.run(
                list_remotes(config, probe=args.probe, as_json=args.json, out=sys.stdout)
            )
        if args.command == "reload":
            return cmd_reload(args)
        if args.command == "folder":
            from syncapp.foldercmd import cmd_folder

            config_path = find_config_path(args.config)
            state = default_state_path()
            return asyncio.run(cmd_folder(args, config_path, state, sys.stdout))
        if args.command in ("pause", "resume", "rescan"):
            return cmd_control(args)
        if args.command == "service":
            from syncapp import daemon

            if args.action == "uninstall":
                return daemon.uninstall_service(sys.stdout)
            config = load_config(args.config)
            return daemon.install_service(config.path.resolve(), secret_names(config), sys.stdout)
        if args.command in ("start", "stop"):
            from syncapp import daemon

            if args.command == "stop":
                return daemon.stop(default_state_path(), sys.stdout)
            config = load_config(args.config)
            check_secrets(config, os.environ)
            return daemon.start(config.path.resolve(), default_state_path(), sys.stdout)
        if args.command == "demo":
            return run_demo(args)
        return cmd_ui(args)
    except ConfigError as e:
        print(f"syncapp: config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (StateError, LocalWriteError) as e:
        # Local trouble the user must fix first (one line, nothing was sent).
        print(f"syncapp: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and friends: stop quietly, like other Unix tools.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK
    except SyncappError as e:
        print(f"syncapp: {e}", file=sys.stderr)
        return EXIT_FAILED


def cmd_ui(args: argparse.Namespace) -> int:
    """The terminal UI, a view of the background engine: it attaches to the one running on this
    state, or starts one when the config has folders. Without a config file yet, it opens on the
    welcome screen."""
    import io

    from syncapp import daemon
    from syncapp.engine.client import EngineClient

    state = default_state_path()
    path = find_config_path(args.config)
    running = daemon.ask_engine(state, "GET", "/v1/status")
    if running is not None and running.get("config"):
        engine_path = Path(running["config"])
        if args.config is not None and engine_path.resolve() != path.resolve():
            raise SyncappError(
                f"the running engine (pid {running.get('pid')}) uses {engine_path}, not {path};"
                " `syncapp stop` stops it"
            )
        path = engine_path
    config: Config | None = None
    if path.exists():
        config = load_config(path)  # a broken config is reported, never overwritten

    def start() -> str | None:
        try:
            check_secrets(load_config(path), os.environ)
        except ConfigError as e:
            return str(e)
        out = io.StringIO()
        code = daemon.start(path.resolve(), state, out)
        return None if code == 0 else " ".join(out.getvalue().split())

    from syncapp.tui.app import SyncApp

    SyncApp(
        config, config_path=path, engine_factory=lambda _config: EngineClient(state, start)
    ).run()
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    """The demo: its WebDAV server, then the UI (or, headless, the engine with log lines)."""
    from syncapp.davserver import DavServer
    from syncapp.demo import (
        demo_dirs,
        demo_state_path,
        drop_live_samples,
        prepare,
        write_demo_config,
    )

    folder, server_root, config_path = demo_dirs()
    prepare(folder, server_root)
    with DavServer(server_root, port=args.port) as server:
        write_demo_config(folder, server.url, config_path)
        config = parse_config(config_path.read_text(encoding="utf-8"), config_path)
        if not args.headless and sys.stdout.isatty():
            try:
                from syncapp.tui.app import SyncApp
            except ImportError:
                pass
            else:
                app = SyncApp(config, demo_folder=folder, state_path=demo_state_path())
                app.run()
                return 0
        print(f"syncapp demo: WebDAV server {server.url} serving {server_root}")
        print(f"syncapp demo: mirroring {folder} live (config: {config_path})")
        print("syncapp demo: edit files there and watch them arrive; Ctrl-C stops.", flush=True)

        async def main() -> int:
            samples = asyncio.create_task(drop_live_samples(folder))
            try:
                return await run_engine(config, once=False, state_path=demo_state_path())
            finally:
                samples.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await samples

        return asyncio.run(main())


# -- run ------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not config.folders:
        raise ConfigError(str(config.path), "folders", "no folders configured")
    check_secrets(config, os.environ)
    if args.dry_run:
        from syncapp.dryrun import dry_run

        return asyncio.run(
            dry_run(
                config,
                as_json=args.json,
                out=sys.stdout,
                allow_mass_delete=args.allow_mass_delete,
            )
        )
    return asyncio.run(
        run_engine(
            config,
            once=args.once,
            as_json=args.json,
            allow_mass_delete=args.allow_mass_delete,
            bwlimit=args.bwlimit,
        )
    )


# -- status and why -----------------------------------------------------------------------------


def _open_state() -> Any:
    from syncapp.engine.state import open_state

    path = default_state_path()
    if not path.exists():
        return None
    return open_state(path, readonly=True)


def cmd_state(args: argparse.Namespace) -> int:
    from syncapp.engine.state import open_state, reset_state

    path = default_state_path()
    if not args.reset:
        if not path.exists():
            print(f"state database: {path} (not created yet)")
            return EXIT_OK
        open_state(path, readonly=True).close()  # a problem is one line, exit 2
        print(f"state database: {path} (readable)")
        return EXIT_OK
    try:
        aside = reset_state(path)
    except OSError as e:
        raise StateError(
            str(path), f"cannot move the state database {path} aside: {e.strerror or e}"
        ) from None
    if aside is None:
        print(f"no state database at {path}; nothing to reset")
        return EXIT_OK
    print(
        f"moved the state database aside: {path} -> {aside}; "
        "the next run adopts what is on the remote"
    )
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    names = [args.folder] if args.folder else list(config.folders)
    for n in names:
        if n not in config.folders:
            raise ConfigError(str(config.path), f"folders.{n}", "no such folder")
    db = _open_state()
    result: dict[str, Any] = {}
    #: Folders whose guard holds deletes made on the remote (two-way), not here.
    held_down: set[str] = set()
    for n in names:
        fc = config.folders[n]
        rec = db.folder(n) if db else None
        counts = db.pending_counts(n) if db else {}
        if db and counts.get("guard"):
            held = next((p for p in db.pending(n) if p.status == "guard"), None)
            if held is not None and deleted_on_remote(held.reason):
                held_down.add(n)
        info: dict[str, Any] = {
            "folder": n,
            "path": str(fc.path),
            "remote": fc.remote,
            "remote_path": fc.remote_path,
            "files_in_sync": db.count_entries(n) if db else 0,
            "pending": counts,
            "last_sync": rec.last_sync if rec else None,
            # False after a crash or kill -9: the next start lists the remote to clean up.
            "last_shutdown_clean": rec.clean if rec else None,
        }
        if fc.direction == "both":
            info["direction"] = "both"
            info["two_way"] = read_tally(db, n) if db else {}
        if args.pending:
            info["paths"] = [
                {
                    "path": p.path,
                    "status": p.status,
                    "reason": p.reason,
                    "attempts": p.attempts,
                    "retry_at": p.retry_at,
                }
                for p in (db.pending(n) if db else [])
            ]
        result[n] = info
    if db:
        db.close()
    from syncapp.daemon import ask_engine
    from syncapp.livestatus import live_lines, live_of

    infos = ask_engine(default_state_path(), "GET", "/v1/folders")
    for fi in infos or []:
        live = live_of(fi)
        if fi["name"] in result and live is not None:
            result[fi["name"]]["live"] = live  # what the running engine is doing now
    if args.json:
        print(json.dumps(result if not args.folder else result[args.folder], ensure_ascii=False))
        return EXIT_OK
    for n, info in result.items():
        last = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["last_sync"]))
            if info["last_sync"]
            else "never"
        )
        pend = ", ".join(f"{v} {k}" for k, v in sorted(info["pending"].items())) or "none"
        print(f"{n}: {info['path']} -> {info['remote']}:/{info['remote_path']}")
        print(f"  in sync: {info['files_in_sync']} files; pending: {pend}; last sync: {last}")
        if "live" in info:
            print("\n".join(live_lines(info["live"])))
        tw = info.get("two_way")
        if tw:
            print(
                f"  two-way: {tw['downloaded']} downloaded, {tw['renamed']} renamed,"
                f" {tw['trashed']} moved to the trash, {tw['conflicts']} conflict(s) kept"
            )
            for path, copy, _ in tw["recent_conflicts"][:5]:
                print(f"    conflict: {path} (the remote copy is {copy})")
        if info["pending"].get("guard") and n in held_down:
            print(
                f"  paused by the delete guard: {info['pending']['guard']} file(s) deleted on"
                " the remote wait: in the UI, move them to the trash here or restore them to"
                " the remote (run --once --allow-mass-delete moves them to the trash)"
            )
        elif info["pending"].get("guard"):
            print(
                f"  paused by the delete guard: {info['pending']['guard']} delete(s) wait"
                " for confirmation (the UI, or run --once --allow-mass-delete)"
            )
        for p in info.get("paths", []):
            print(f"  {p['status']:<9} {p['path']}: {p['reason']}")
    return EXIT_OK


def cmd_control(args: argparse.Namespace) -> int:
    """pause / resume / rescan FOLDER: asked of the running engine."""
    from urllib.parse import quote

    from syncapp.daemon import ask_engine

    config = load_config(args.config)
    if args.folder not in config.folders:
        raise ConfigError(str(config.path), f"folders.{args.folder}", "no such folder")
    path = f"/v1/folders/{quote(args.folder, safe='')}/{args.command}"
    reply = ask_engine(default_state_path(), "POST", path)
    if reply is None:
        print("syncapp: no engine is running (`syncapp start` starts one)", file=sys.stderr)
        return EXIT_FAILED
    reason = f" ({reply['reason']})" if reply.get("reason") else ""
    print(f"{args.folder}: {reply['state']}{reason}")
    return EXIT_OK


def cmd_reload(args: argparse.Namespace) -> int:
    """The running engine reads its config file again: new folders open, removed ones close,
    changed ones reopen (a config edited by hand while the engine runs as a service)."""
    from syncapp.daemon import ask_engine

    load_config(args.config)  # a broken config is said here, before the engine is asked
    reply = ask_engine(default_state_path(), "POST", "/v1/config/reload")
    if reply is None:
        print("syncapp: no engine is running (`syncapp start` starts one)", file=sys.stderr)
        return EXIT_FAILED
    errors = reply.get("errors") or {}
    for name, error in errors.items():
        print(f"syncapp: folder {name}: cannot open: {error}", file=sys.stderr)
    print("config reloaded" + (f"; {len(errors)} folder(s) could not open" if errors else ""))
    return EXIT_FAILED if errors else EXIT_OK


def cmd_why(args: argparse.Namespace) -> int:
    """The state database's answer, with what the running engine says about the path now
    (in flight, queued, held, waiting to retry or settle) when one runs."""
    from syncapp.why import explain, path_now, with_live

    config = load_config(args.config)
    if args.folder not in config.folders:
        raise ConfigError(str(config.path), f"folders.{args.folder}", "no such folder")
    fc = config.folders[args.folder]
    now, pid = asyncio.run(path_now(fc, args.path, default_state_path()))
    db = _open_state()  # after the engine flushed its reasons
    try:
        answer = with_live(explain(fc, args.path, db), now, pid)
    finally:
        if db:
            db.close()
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
    else:
        print(f"{answer['path']}: {answer['answer']}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
