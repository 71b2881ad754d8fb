"""``SyncApp``: the terminal UI, with the sync engine running inside it.

The engine lives in one async worker: it is entered, driven and left in that one task. Other
parts of the UI hand it work through ``call_engine`` (a queue the worker drains), so adding or
removing a folder opens or closes its context in the engine's own task too. Engine events reach
the widgets through ``EventRelay``: collapsed, batched, at most ten batches a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker

from syncapp.config import Config, FolderConfig, find_config_path, load_config, parse_config
from syncapp.engine import Event, FolderState, GuardTripped, SyncEngine
from syncapp.engine.state import Pending
from syncapp.engine.versions import Version
from syncapp.errors import ConfigError, SyncappError
from syncapp.tui import configdoc
from syncapp.tui.activity import DARK, History, LogScreen, Palette
from syncapp.tui.commands import SyncCommands
from syncapp.tui.configdoc import FolderDraft, RemoteDraft
from syncapp.tui.dashboard import DashboardScreen
from syncapp.tui.detail import FolderDetailScreen, VersionsScreen
from syncapp.tui.dialogs import ConfirmDialog, DemoDialog, GuardDialog
from syncapp.tui.format import date_time, human_size, plural
from syncapp.tui.forms import FolderForm
from syncapp.tui.messages import (
    DashboardMounted,
    EngineEventsArrived,
    EngineStarted,
    EngineStopped,
    FolderOpenFailed,
    FolderSelected,
)
from syncapp.tui.relay import EventRelay
from syncapp.tui.remotes import RemoteForm, RemotesScreen
from syncapp.tui.theme import readable_themes
from syncapp.tui.welcome import WelcomeScreen

log = logging.getLogger(__name__)

T = TypeVar("T")
EngineFactory = Callable[[Config], SyncEngine]
EngineCall = Callable[[SyncEngine], Awaitable[Any]]

#: How long ``q`` waits for the engine to finish in-flight work before cancelling it.
SHUTDOWN_TIMEOUT = 8.0


def css_path() -> Path:
    # assets/ ships inside the wheel as syncapp.assets; an editable install maps it to a Path.
    return Path(str(files("syncapp.assets").joinpath("syncapp.tcss")))


class SyncApp(App[None]):
    TITLE = "syncapp"
    CSS_PATH = css_path()
    COMMANDS: ClassVar = App.COMMANDS | {SyncCommands}
    BINDINGS = [Binding("q", "quit", "Quit")]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide"), (180, "-xwide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]

    def __init__(
        self,
        config: Config | None,
        *,
        config_path: Path | None = None,
        demo_folder: Path | None = None,
        engine: bool = True,
        engine_factory: EngineFactory | None = None,
        state_path: Path | None = None,
        clock: Callable[[], float] = time.time,
        relay_interval: float = 0.1,
    ) -> None:
        """``config`` None is a first run: the welcome screen, and the config is written to
        ``config_path`` (default: the usual place). ``engine=False`` shows the UI without
        syncing (snapshot tests feed it events by hand)."""
        super().__init__()
        for theme in readable_themes():
            self.register_theme(theme)  # the same names: text colours that pass 4.5:1
        # The stylesheet took the built-in theme's variables in App.__init__: take ours.
        self.stylesheet.set_variables(self.get_css_variables())
        self.first_run = config is None
        self.config = config or configdoc.empty_config(config_path or find_config_path(None))
        self.demo_folder = demo_folder
        #: The user's own config: where folders go once they leave the demo.
        self.own_config_path = (
            config_path or find_config_path(None) if demo_folder else self.config.path
        )
        self.sub_title = self._title_for(self.config.path)
        self.clock = clock
        self.state_path = state_path
        if engine_factory is None and engine:
            engine_factory = self._default_engine
        self.engine_factory = engine_factory
        self.engine: SyncEngine | None = None
        self.engine_error = ""
        self._engine_worker: Worker[None] | None = None
        self._commands: asyncio.Queue[tuple[EngineCall, asyncio.Future[Any], bool] | None] = (
            asyncio.Queue()
        )
        self.relay = EventRelay(self._deliver, relay_interval)
        self.history = History()
        self.selected_folder: str | None = next(iter(self.config.folders), None)
        self._demo_server: Any = None
        self._samples_dropped = False
        self._guard_shown: set[str] = set()
        #: Folders whose held deletes are being downloaded back ("Restore the files locally").
        self._restoring: set[str] = set()

    def _title_for(self, path: Path) -> str:
        shown = configdoc.display_path(path)
        return f"{shown}  (demo)" if self.demo_folder is not None else shown

    def _default_engine(self, config: Config) -> SyncEngine:
        return SyncEngine(config, self.state_path, live=True)

    def get_default_screen(self) -> Screen[Any]:
        return DashboardScreen(self.clock)

    @property
    def dashboard(self) -> DashboardScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, DashboardScreen)
        return screen

    @on(DashboardMounted)
    async def _dashboard_mounted(self) -> None:
        await self.dashboard.folders.sync_folders(self.config.folders.values())
        self._focus_selected()
        if self.first_run:
            self.push_screen(WelcomeScreen())
        else:
            self.start_engine()

    # -- the engine -------------------------------------------------------------------------------

    def start_engine(self) -> None:
        if self.engine_factory is None:
            return
        if self._engine_worker is not None and not self._engine_worker.is_finished:
            return
        self._engine_worker = self._run_engine()

    @work(group="engine", exit_on_error=False)
    async def _run_engine(self) -> None:
        assert self.engine_factory is not None
        # Folders are opened one by one below, so one bad folder cannot keep the rest down.
        engine = self.engine_factory(dataclasses.replace(self.config, folders={}))
        unsubscribe = engine.subscribe(self.relay)
        error = ""
        try:
            async with engine:
                self.engine = engine
                self.post_message(EngineStarted())
                for cfg in list(self.config.folders.values()):
                    await self._open_folder(engine, cfg)
                alongside: set[asyncio.Task[None]] = set()
                try:
                    while True:
                        item = await self._commands.get()
                        if item is None:
                            break
                        call, future, exclusive = item
                        if exclusive:
                            # Opening or closing a folder waits for the listings and restores
                            # already running (a reopen must not pull a remote from under them).
                            await asyncio.gather(*alongside, return_exceptions=True)
                            await _answer(call, engine, future)
                        else:
                            # Listings and downloads run side by side (a long restore must not
                            # delay a versions listing), still inside the engine's contexts.
                            task = asyncio.create_task(_answer(call, engine, future))
                            alongside.add(task)
                            task.add_done_callback(alongside.discard)
                            # Cancelled before it started, it never reached its own answer.
                            task.add_done_callback(partial(_stopped, future))
                finally:
                    for task in alongside:
                        task.cancel()
                    await asyncio.gather(*alongside, return_exceptions=True)
        except Exception as e:
            log.exception("engine failed")
            error = str(e) or type(e).__name__
        finally:
            self.engine = None
            unsubscribe()
            # Whoever still waits on a call gets an answer, not a hang.
            while not self._commands.empty():
                item = self._commands.get_nowait()
                if item is not None and not item[1].done():
                    item[1].set_exception(SyncappError("the engine stopped"))
            self.post_message(EngineStopped(error))

    async def _open_folder(self, engine: SyncEngine, cfg: FolderConfig) -> None:
        try:
            if cfg.name in engine.folders:
                await engine.remove_folder(cfg.name)
            await engine.add_folder(cfg, self.config.remotes[cfg.remote])
        except Exception as e:
            log.warning("cannot open folder %s: %s", cfg.name, e)
            self.post_message(FolderOpenFailed(cfg.name, str(e) or type(e).__name__))
            return
        view = self.dashboard.folders.views.get(cfg.name)
        if view is not None:
            folder = engine.folder(cfg.name)
            view.seed(folder.status())
            view.bwlimit = folder.bwlimit

    async def call_engine(self, call: EngineCall, *, exclusive: bool = True) -> Any:
        """Run ``call(engine)`` in the engine's task; start the engine if it is not running.

        Exclusive calls (those that open or close folders) run one at a time; the others run
        alongside them and each other, in tasks the engine's worker owns."""
        if self.engine_factory is None:
            return None
        if self._engine_worker is None or self._engine_worker.is_finished:
            # Starting it opens every configured folder, the new one included.
            self.start_engine()
            return None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._commands.put_nowait((call, future, exclusive))
        return await future

    async def stop_engine(self, grace: float = SHUTDOWN_TIMEOUT) -> None:
        worker = self._engine_worker
        if worker is None or worker.is_finished:
            return
        self._commands.put_nowait(None)

        async def finished() -> None:
            with contextlib.suppress(Exception):
                await worker.wait()

        waiter = asyncio.ensure_future(finished())
        _, pending = await asyncio.wait({waiter}, timeout=grace)
        if pending:
            # Stuck on a dead server: cancel; in-flight uploads are abandoned safely.
            worker.cancel()
            await asyncio.wait({waiter}, timeout=2.0)

    def _deliver(self, events: list[Event]) -> None:
        self.post_message(EngineEventsArrived(events))

    @on(EngineEventsArrived)
    def _events_arrived(self, message: EngineEventsArrived) -> None:
        try:
            if self.screen_stack:  # not while the app is shutting down
                self.apply_events(message.events)
        finally:
            self.relay.ack()

    def apply_events(self, events: list[Event]) -> None:
        """Show a batch of engine events everywhere they belong (each widget updates once)."""
        palette = self.palette()
        self.dashboard.apply(events, palette)
        lines = self.history.add(events, palette)
        for screen in self.screen_stack:
            if isinstance(screen, LogScreen):
                screen.add_lines(lines)
            elif isinstance(screen, FolderDetailScreen | VersionsScreen):
                screen.events_arrived(events)
        for ev in events:
            if isinstance(ev, GuardTripped):
                self._show_guard(ev)

    @on(EngineStarted)
    def _engine_started(self) -> None:
        self.engine_error = ""
        if self.demo_folder is not None and not self._samples_dropped:
            self._samples_dropped = True
            self._drop_samples(self.demo_folder)
            remote = next(iter(self.config.remotes.values()), None)
            where = getattr(remote, "url", "") or "the demo server"
            self.notify(
                f"Edit, add or delete files in {configdoc.display_path(self.demo_folder)} "
                f"and watch them reach {where}",
                title="syncapp demo",
                timeout=20,
            )

    @on(EngineStopped)
    def _engine_stopped(self, message: EngineStopped) -> None:
        if message.error:
            self.engine_error = message.error
            self.notify(f"The sync engine stopped: {message.error}", severity="error", timeout=30)
            for view in self.dashboard.folders.views.values():
                view.open_error = message.error
            self.dashboard.folders.refresh_panels()

    @on(FolderOpenFailed)
    def _folder_open_failed(self, message: FolderOpenFailed) -> None:
        view = self.dashboard.folders.views.get(message.name)
        if view is not None:
            view.open_error = message.error
        self.dashboard.folders.refresh_panels()
        self.note(f"{message.name}: cannot open: {message.error}", "error")

    @on(FolderSelected)
    def _folder_selected(self, message: FolderSelected) -> None:
        self.selected_folder = message.name
        self.dashboard.update_pause_label()

    @work(group="demo", exit_on_error=False)
    async def _drop_samples(self, folder: Path) -> None:
        from syncapp.demo import drop_live_samples

        await drop_live_samples(folder)

    def palette(self) -> Palette:
        """Log line colours from the current theme (its text-on-background variants)."""
        v = self.theme_variables
        return {
            tone: v.get(f"text-{name}", DARK[tone])
            for tone, name in (
                ("error", "error"),
                ("warning", "warning"),
                ("success", "success"),
                ("note", "primary"),
            )
        }

    def note(self, message: str, tone: str = "note") -> None:
        """A line in the full log from the UI itself."""
        palette = dict(self.palette())
        palette["note"] = palette.get(tone, palette["note"])
        line = self.history.note(message, self.clock(), palette)
        for screen in self.screen_stack:
            if isinstance(screen, LogScreen):
                screen.add_lines([line])

    # -- quitting ---------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        if self.engine is not None:
            self.notify("Stopping… (finishing what is in flight)", timeout=SHUTDOWN_TIMEOUT)
        await self.stop_engine()
        self.stop_demo()
        self.relay.close()
        self.exit()

    def stop_demo(self) -> None:
        server, self._demo_server = self._demo_server, None
        if server is not None:
            server.stop()

    # -- folders ----------------------------------------------------------------------------------

    def _focus_selected(self) -> None:
        name = self.selected_folder
        if name is None or name not in self.config.folders:
            name = self.selected_folder = next(iter(self.config.folders), None)
        if name is None:
            return
        panel = self.dashboard.folders.panel(name)
        if panel is not None and self.screen is self.dashboard:
            panel.focus()

    def _selected(self) -> str | None:
        name = self.selected_folder
        if name is None or name not in self.config.folders:
            self.notify("No folder selected: add one with a.", severity="warning")
            return None
        return name

    def open_folder_form(
        self, editing: FolderConfig | None = None, then: Callable[[str | None], Any] | None = None
    ) -> None:
        def done(name: str | None) -> None:
            if name is not None:
                self.selected_folder = name
                self._focus_selected()
            if then is not None:
                then(name)

        self.push_screen(FolderForm(self.config, self.save_folder, editing), done)

    def action_add_folder(self) -> None:
        if self.demo_folder is not None:
            # The demo's config and server are thrown away on quit: say so, offer the real thing.
            def chosen(choice: str | None) -> None:
                if choice == "real":
                    self.call_later(self.leave_demo_and_add)
                elif choice == "demo":
                    self.open_folder_form()

            dialog = DemoDialog(
                configdoc.display_path(self.config.path),
                configdoc.display_path(self.own_config_path),
            )
            self.push_screen(dialog, chosen)
            return
        self._add_folder()

    async def leave_demo_and_add(self) -> None:
        if await self.leave_demo():
            self._add_folder()

    async def leave_demo(self) -> bool:
        """Stop the demo (its engine, server and samples) and go back to the user's own
        config; False (and nothing changed) when that config cannot be read."""
        path = self.own_config_path
        try:
            config = load_config(path) if path.exists() else configdoc.empty_config(path)
        except ConfigError as e:
            self.notify(f"Cannot leave the demo: {e}", severity="error", timeout=20)
            return False
        await self.stop_engine()
        self.workers.cancel_group(self, "demo")
        self.stop_demo()
        self.demo_folder = None
        self.state_path = None  # the user's own state, not the demo's
        self.config = config
        self.sub_title = self._title_for(path)
        self.selected_folder = next(iter(config.folders), None)
        await self.dashboard.folders.sync_folders(config.folders.values())
        self.note(f"left the demo; folders are saved in {path}")
        self.start_engine()
        return True

    def _add_folder(self) -> None:
        if not self.config.remotes:
            self.notify("First add a remote: where the folder's files go.")

            def remote_added(name: str | None) -> None:
                if name is not None:
                    self.open_folder_form()

            self.open_remote_form(then=remote_added)
            return
        self.open_folder_form()

    def action_edit_folder(self) -> None:
        name = self._selected()
        if name is not None:
            self.edit_folder(name)

    def edit_folder(self, name: str) -> None:
        self.open_folder_form(self.config.folders[name])

    async def save_folder(self, draft: FolderDraft, editing: str | None) -> str | None:
        """Write the folder into the config and (re)open it in the engine; an error or None."""
        error = self._commit_config(lambda: configdoc.with_folder(self.config, draft, editing))
        if error:
            return error
        new = self.config
        cfg = new.folders[draft.name]
        verb = "changed" if editing else "added"
        self.note(f"folder {draft.name} {verb}; config saved to {new.path}")
        await self.dashboard.folders.sync_folders(new.folders.values())
        if editing is not None:
            self.dashboard.transfers.forget_folder(editing)

        async def reopen(engine: SyncEngine) -> None:
            if editing is not None and editing != cfg.name:
                await engine.remove_folder(editing)
            await self._open_folder(engine, cfg)

        try:
            await self.call_engine(reopen)
        except SyncappError as e:
            self.notify(f"Saved, but the engine could not open it: {e}", severity="error")
        self.dashboard.folders.refresh_panels()
        return None

    def action_remove_folder(self) -> None:
        name = self._selected()
        if name is not None:
            self.remove_folder(name)

    def remove_folder(self, name: str) -> None:
        async def answered(yes: bool | None) -> None:
            if yes:
                error = await self.forget_folder(name)
                if error:
                    self.notify(error, severity="error")

        self.push_screen(
            ConfirmDialog(
                "Remove folder",
                f"Stop syncing {name!r} and remove it from the config?\n"
                "No file is deleted, neither here nor on the remote.",
                "Remove",
            ),
            answered,
        )

    async def forget_folder(self, name: str) -> str | None:
        error = self._commit_config(lambda: configdoc.without_folder(self.config, name))
        if error:
            return error
        new = self.config
        self.note(f"folder {name} removed from the config (no file deleted)")

        async def close(engine: SyncEngine) -> None:
            await engine.remove_folder(name)

        with contextlib.suppress(SyncappError):
            await self.call_engine(close)
        self.dashboard.transfers.forget_folder(name)
        await self.dashboard.folders.sync_folders(new.folders.values())
        self._focus_selected()
        return None

    def action_toggle_pause(self) -> None:
        name = self._selected()
        if name is not None:
            self.toggle_pause(name)

    def toggle_pause(self, name: str) -> None:
        engine = self.engine
        if engine is None or name not in engine.folders:
            self.notify(f"{name} is not running.", severity="warning")
            return
        folder = engine.folder(name)
        view = self.dashboard.folders.views.get(name)
        if name in self._restoring:
            self.notify(f"{name}: still restoring the deleted files; it resumes by itself.")
            return
        if folder.guard_deletes and view is not None and view.guard is not None:
            # Resuming would only trip the guard again: ask what to do with the deletes.
            self._guard_shown.discard(name)
            self._show_guard(view.guard)
            return
        if folder.paused:
            engine.resume(name)
            self.notify(f"{name}: resumed")
        else:
            engine.pause(name)
            self.notify(f"{name}: paused")

    def action_rescan(self) -> None:
        name = self._selected()
        if name is not None:
            self.rescan(name)

    def rescan(self, name: str) -> None:
        engine = self.engine
        view = self.dashboard.folders.views.get(name)
        if engine is None or name not in engine.folders:
            if view is not None:
                view.open_error = ""
                view.state = FolderState.SCANNING
                self.dashboard.folders.refresh_panels()
            cfg = self.config.folders[name]

            async def reopen(engine: SyncEngine) -> None:
                await self._open_folder(engine, cfg)

            self._call_in_background(reopen)
            self.notify(f"{name}: opening again")
            return
        engine.rescan(name)
        self.notify(f"{name}: rescanning")

    @work(group="calls", exit_on_error=False)
    async def _call_in_background(self, call: EngineCall) -> None:
        try:
            await self.call_engine(call)
        except SyncappError as e:
            self.notify(str(e), severity="error")

    def _show_guard(self, event: GuardTripped) -> None:
        name = event.folder
        if name in self._guard_shown or name in self._restoring:
            return
        self._guard_shown.add(name)

        def decided(choice: str | None) -> None:
            self._guard_shown.discard(name)
            engine = self.engine
            if engine is None or name not in engine.folders:
                return
            if choice == "delete":
                engine.folder(name).release_guard()
                self.note(f"{name}: deletes released by the user", "warning")
            elif choice == "restore":
                self._restoring.add(name)  # from now on: no second dialog, p waits
                self._restore_held(name)

        cfg = self.config.folders.get(name)
        note = ""
        if cfg is not None and cfg.versions:
            note = (
                f"Files deleted on the remote are kept under .syncapp-versions/ there for "
                f"{cfg.keep_versions}."
            )
        self.push_screen(GuardDialog(event, note), decided)

    @work(group="restore-held", exit_on_error=False)
    async def _restore_held(self, name: str) -> None:
        """Release the guard by downloading the held deletes back, in the engine's task."""
        self.notify(f"{name}: downloading the deleted files back from the remote…")

        async def restore(engine: SyncEngine) -> int:
            return await engine.folder(name).restore_held()

        try:
            n = await self.call_engine(restore, exclusive=False)
        except (SyncappError, OSError) as e:
            self.notify(f"{name}: restoring failed: {e}", severity="error", timeout=15)
            self.note(f"{name}: restoring the deleted files failed: {e}", "error")
            return
        finally:
            self._restoring.discard(name)
        done = f"{name}: {plural(n or 0, 'file')} restored from the remote; nothing was deleted"
        self.notify(done)
        self.note(done, "success")

    # -- folder details, retry and versions -------------------------------------------------------

    def action_folder_details(self) -> None:
        name = self._selected()
        if name is not None:
            self.open_details(name)

    def open_details(self, name: str) -> None:
        self.push_screen(FolderDetailScreen(name, partial(self.folder_paths, name)))

    def folder_running(self, name: str) -> bool:
        return self.engine is not None and name in self.engine.folders

    def folder_paths(self, name: str, everything: bool = False) -> list[Pending]:
        """The folder's paths not in sync with their reasons; with ``everything`` its synced
        files too (status ``in sync``). Empty while the folder is not running."""
        if self.engine is None or not self.folder_running(name):
            return []
        folder = self.engine.folder(name)
        rows = folder.pending()
        if everything:
            listed = {p.path for p in rows}
            rows += [
                Pending(path, "in sync", f"{human_size(e.size)}, synced {date_time(e.synced_at)}")
                for path, e in folder.entries.items()
                if not e.is_dir and path not in listed
            ]
        return rows

    def retry_failed(self, name: str) -> None:
        if self.engine is None or not self.folder_running(name):
            self.notify(f"{name} is not running.", severity="warning")
            return
        folder = self.engine.folder(name)
        failed = folder.status().failed
        if not failed:
            self.notify(f"{name}: nothing has failed.")
            return
        folder.retry_failed()
        self.notify(f"{name}: trying {plural(failed, 'failed path')} again")
        self.note(f"{name}: {plural(failed, 'failed path')} retried by the user")

    async def list_versions(self, name: str, rel: str) -> list[Version]:
        """``rel``'s current remote copy and kept versions, newest first."""
        if not self.folder_running(name):
            raise SyncappError(f"{name} is not running")

        async def versions(engine: SyncEngine) -> list[Version]:
            return await engine.folder(name).list_versions(rel)

        return list(await self.call_engine(versions, exclusive=False) or [])

    async def restore_version(self, name: str, version: Version, dest: str | None) -> str:
        """Write ``version`` back into the folder (or to ``dest``); returns where it went."""
        if not self.folder_running(name):
            raise SyncappError(f"{name} is not running")
        target = dest or str(self.config.folders[name].path / version.path)

        async def restore(engine: SyncEngine) -> Version:
            return await engine.folder(name).restore_version(version, dest=dest)

        await self.call_engine(restore, exclusive=False)
        self.note(f"{name}: restored {version.path} to {configdoc.display_path(target)}")
        return target

    # -- remotes ----------------------------------------------------------------------------------

    def action_remotes(self) -> None:
        self.push_screen(RemotesScreen())

    def open_remote_form(self, then: Callable[[str | None], Any] | None = None) -> None:
        self.push_screen(RemoteForm(self.config, self.save_remote), then)

    async def save_remote(self, draft: RemoteDraft, editing: str | None) -> str | None:
        error = self._commit_config(lambda: configdoc.with_remote(self.config, draft, editing))
        if error:
            return error
        new = self.config
        self.note(f"remote {draft.name} {'changed' if editing else 'added'}")
        if editing is not None:
            # Folders on this remote reopen so they use the new settings.
            users = [f for f in new.folders.values() if f.remote == draft.name]

            async def reopen(engine: SyncEngine) -> None:
                for f in users:
                    await engine.remove_folder(f.name)
                for f in users:
                    await self._open_folder(engine, f)

            if users:
                try:
                    await self.call_engine(reopen)
                except SyncappError as e:
                    self.notify(f"Saved, but reopening failed: {e}", severity="error")
            await self.dashboard.folders.sync_folders(new.folders.values())
        return None

    async def remove_remote(self, name: str) -> str | None:
        error = self._commit_config(lambda: configdoc.without_remote(self.config, name))
        if error:
            return error
        self.note(f"remote {name} removed from the config")
        return None

    def _commit_config(self, change: Callable[[], Config]) -> str | None:
        """Apply ``change`` (a new Config from the current one) and write it; an error or None."""
        try:
            new = change()
        except ConfigError as e:
            return f"{e.key}: {e.problem}" if e.key else e.problem
        try:
            configdoc.save(new)
        except OSError as e:
            return f"cannot write {new.path}: {e.strerror or e}"
        self.config = new
        return None

    # -- other screens ----------------------------------------------------------------------------

    def action_log(self) -> None:
        self.push_screen(LogScreen(self.history))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def start_demo(self) -> None:
        """From the welcome screen: the embedded WebDAV server, the demo folder, live."""
        from syncapp.davserver import DavServer
        from syncapp.demo import demo_dirs, prepare, write_demo_config

        folder, server_root, config_path = demo_dirs()
        prepare(folder, server_root)
        server = DavServer(server_root)
        try:
            server.start()
            write_demo_config(folder, server.url, config_path)
            config = parse_config(config_path.read_text(encoding="utf-8"), config_path)
        except (OSError, ConfigError) as e:
            server.stop()
            self.notify(f"Cannot start the demo: {e}", severity="error")
            return
        self._demo_server = server
        self.own_config_path = self.config.path
        self.config = config
        self.demo_folder = folder
        self.sub_title = self._title_for(config.path)
        self.first_run = False

        async def show() -> None:
            await self.dashboard.folders.sync_folders(config.folders.values())
            while not isinstance(self.screen, DashboardScreen):
                self.pop_screen()
            self.selected_folder = next(iter(config.folders), None)
            self._focus_selected()
            self.start_engine()

        self.call_later(show)


async def _answer(call: EngineCall, engine: SyncEngine, future: asyncio.Future[Any]) -> None:
    try:
        result = await call(engine)
    except asyncio.CancelledError:
        if not future.done():
            future.set_exception(SyncappError("the engine stopped"))
        raise
    except Exception as e:
        if not future.done():
            future.set_exception(e)
    else:
        if not future.done():
            future.set_result(result)


def _stopped(future: asyncio.Future[Any], task: asyncio.Task[None]) -> None:
    if not future.done():
        future.set_exception(SyncappError("the engine stopped"))
