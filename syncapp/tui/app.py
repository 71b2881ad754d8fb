"""``SyncApp``: the terminal UI, a view of one sync engine through ``EngineAPI``.

The engine is either in another process (``syncapp``: the UI attaches to the running engine, or
starts one in the background; quitting leaves it syncing) or in this one (the demo and tests:
quitting stops it). Either way one async worker owns it: it enters the facade, applies the
config and serves until the engine or the view goes. Engine events reach the widgets through
``EventRelay``: collapsed, batched, at most ten batches a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker

from syncapp import configedit
from syncapp.config import Config, find_config_path, parse_config
from syncapp.engine import ConfigChanged, Event, GuardTripped, SyncEngine
from syncapp.engine.api import EngineAPI, LocalEngine
from syncapp.errors import ConfigError, SyncappError
from syncapp.tui.actions import FolderActions
from syncapp.tui.activity import DARK, History, LogScreen, Palette
from syncapp.tui.commands import SyncCommands
from syncapp.tui.dashboard import DashboardScreen
from syncapp.tui.detail import FolderDetailScreen
from syncapp.tui.dialogs import ConfirmDialog
from syncapp.tui.messages import (
    DashboardMounted,
    EngineEventsArrived,
    EngineStarted,
    EngineStopped,
    FolderSelected,
)
from syncapp.tui.relay import EventRelay
from syncapp.tui.theme import readable_themes
from syncapp.tui.versions import VersionsScreen
from syncapp.tui.welcome import WelcomeScreen

log = logging.getLogger(__name__)

#: Objects allocated (less those freed) between two collections of the youngest generation.
GC_YOUNG = 10_000

#: Makes the (not yet entered) engine facade for a config.
EngineFactory = Callable[[Config], EngineAPI]

#: How long ``q`` waits for an engine in this process to finish in-flight work.
SHUTDOWN_TIMEOUT = 8.0


def css_path() -> Path:
    # assets/ ships inside the wheel as syncapp.assets; an editable install maps it to a Path.
    return Path(str(files("syncapp.assets").joinpath("syncapp.tcss")))


class SyncApp(FolderActions, App[None]):
    TITLE = "syncapp"
    CSS_PATH = css_path()
    COMMANDS: ClassVar = App.COMMANDS | {SyncCommands}
    # Two meanings of q: only one is enabled at a time (check_action), and the footer shows it.
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("q", "leave", "Quit (sync goes on)"),
        Binding("Q", "quit_and_stop", "Quit and stop syncing"),
    ]
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
        syncing (snapshot tests feed it events by hand). Without ``engine_factory`` the engine
        runs in this process."""
        super().__init__()
        for theme in readable_themes():
            self.register_theme(theme)  # the same names: text colours that pass 4.5:1
        # The stylesheet took the built-in theme's variables in App.__init__: take ours.
        self.stylesheet.set_variables(self.get_css_variables())
        self.first_run = config is None
        self.config = config or configedit.empty_config(config_path or find_config_path(None))
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
        #: The user's own engine (not the demo's), for when the demo is left.
        self.own_engine_factory = engine_factory
        self.engine: EngineAPI | None = None
        self.engine_error = ""
        self._engine_worker: Worker[None] | None = None
        self.relay = EventRelay(self._deliver, relay_interval)
        self.history = History()
        self.selected_folder: str | None = next(iter(self.config.folders), None)
        self._demo_server: Any = None
        self._samples_dropped = False
        self._guard_shown: set[str] = set()
        #: Folders whose held deletes are being downloaded back ("Restore the files locally").
        self._restoring: set[str] = set()
        #: The engine runs in another process and goes on after the UI (``q`` leaves it).
        self.attached = False
        #: Held while this view changes the config and while it takes a change made elsewhere,
        #: so its own change is never taken for another view's.
        self.config_lock = asyncio.Lock()

    def _title_for(self, path: Path) -> str:
        shown = configedit.display_path(path)
        return f"{shown}  (demo)" if self.demo_folder is not None else shown

    def _default_engine(self, config: Config) -> EngineAPI:
        return LocalEngine(SyncEngine(config, self.state_path, live=True))

    def get_default_screen(self) -> Screen[Any]:
        return DashboardScreen(self.clock)

    @property
    def dashboard(self) -> DashboardScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, DashboardScreen)
        return screen

    def on_mount(self) -> None:
        # Textual makes and drops thousands of objects a frame (each strip holds seven caches).
        # With Python's young generation of 700 many lived long enough to reach the oldest, and
        # full collections (the UI held 50 ms to over a second) came every few seconds while
        # syncing; in a young generation of 10,000 they die young (see the UI latency bench).
        young, *older = gc.get_threshold()
        gc.set_threshold(max(young, GC_YOUNG), *older)
        if not gc.get_freeze_count():
            # What is there now (modules, classes, the app) lives as long as the process: a
            # full collection need not walk it again (a fifth of the objects, or more).
            gc.collect()
            gc.freeze()

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
        if self.engine_factory is None or not self.config.folders:
            return  # an engine with nothing to sync is started by the first folder
        if self._engine_worker is not None and not self._engine_worker.is_finished:
            return
        self._engine_worker = self._run_engine()

    @property
    def engine_running(self) -> bool:
        return self._engine_worker is not None and not self._engine_worker.is_finished

    @work(group="engine", exit_on_error=False)
    async def _run_engine(self) -> None:
        assert self.engine_factory is not None
        # Folders are opened by apply_config, so one bad folder cannot keep the rest down.
        api = self.engine_factory(dataclasses.replace(self.config, folders={}))
        unsubscribe = api.subscribe(self.relay)
        error = ""
        try:
            async with api:
                self.engine = api
                self.attached = api.remote_engine
                self.refresh_bindings()
                self.post_message(EngineStarted())
                await self.apply_config()
                error = await api.serve()
        except Exception as e:
            log.exception("engine failed")
            error = str(e) or type(e).__name__
        finally:
            self.engine = None
            unsubscribe()
            self.post_message(EngineStopped(error))

    async def apply_config(self) -> None:
        """Tell the engine the config (it opens, closes or reopens folders) and show what it
        says of each folder."""
        api = self.engine
        if api is None:
            return
        await api.apply_config(self.config)
        await self.show_engine_folders()

    async def show_engine_folders(self) -> None:
        """Show what the engine says of each folder: its state, or why it could not open."""
        api = self.engine
        if api is None:
            return
        infos = await api.folders()
        views = self.dashboard.folders.views
        for name, info in infos.items():
            view = views.get(name)
            if view is None:
                continue
            if info.status is not None:
                view.seed(info.status)
                view.bwlimit = info.bwlimit
            else:
                view.open_error = info.open_error
                self.note(f"{name}: cannot open: {info.open_error}", "error")
        self.dashboard.folders.refresh_panels()

    def api(self) -> EngineAPI:
        """The running engine's facade; a one-line error when there is none."""
        if self.engine is None:
            raise SyncappError("the sync engine is not running")
        return self.engine

    async def stop_engine(self, grace: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop viewing the engine: one in this process stops (in-flight work finishes within
        ``grace``); one in another process goes on syncing."""
        worker = self._engine_worker
        if worker is None or worker.is_finished:
            return
        if self.engine is not None:
            self.engine.close()

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
        config_changed = False
        for ev in events:
            if isinstance(ev, GuardTripped):
                self._show_guard(ev)
            elif isinstance(ev, ConfigChanged):
                config_changed = True
        if config_changed:
            self._follow_config()

    @work(group="config", exit_on_error=False)
    async def _follow_config(self) -> None:
        """The engine runs on a changed config: show its folders as they are now. The change
        may come from another view, ``syncapp folder add|remove`` or ``syncapp reload``; one
        this view made itself is shown already (and is found to be no change here)."""
        async with self.config_lock:
            api = self.engine
            if api is None:
                return
            try:
                new = await api.current_config()
            except (SyncappError, OSError) as e:  # ConfigError: a hand edit broke the file
                self.note(f"the engine's config changed, but cannot be read here: {e}", "error")
                return
            await self.show_config(new)

    @on(EngineStarted)
    def _engine_started(self) -> None:
        self.engine_error = ""
        if self.attached and self.engine is not None:
            self.note(f"attached to the engine running in the background (pid {self.engine.pid})")
        if self.demo_folder is not None and not self._samples_dropped:
            self._samples_dropped = True
            self._drop_samples(self.demo_folder)
            remote = next(iter(self.config.remotes.values()), None)
            where = getattr(remote, "url", "") or "the demo server"
            self.notify(
                f"Edit, add or delete files in {configedit.display_path(self.demo_folder)} "
                f"and watch them reach {where}",
                title="syncapp demo",
                timeout=20,
            )

    @on(EngineStopped)
    def _engine_stopped(self, message: EngineStopped) -> None:
        attached, self.attached = self.attached, False
        self.refresh_bindings()
        if not message.error:
            return
        self.engine_error = message.error
        for view in self.dashboard.folders.views.values():
            view.open_error = message.error
        self.dashboard.folders.refresh_panels()
        self.note(f"the sync engine stopped: {message.error}", "error")
        if not attached:
            self.notify(f"The sync engine stopped: {message.error}", severity="error", timeout=30)
            return

        def answered(again: bool | None) -> None:
            if again:
                for view in self.dashboard.folders.views.values():
                    view.open_error = ""
                self.start_engine()

        self.push_screen(
            ConfirmDialog(
                "The sync engine stopped",
                f"{message.error}.\nNothing is synced until it runs again. Start it again?",
                "Start",
                default="confirm",
            ),
            answered,
        )

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "quit":
            return not self.attached
        if action in ("leave", "quit_and_stop"):
            return self.attached
        return True

    async def action_quit(self) -> None:
        """Quit; an engine in this process stops with the UI."""
        if self.engine is not None:
            self.notify("Stopping… (finishing what is in flight)", timeout=SHUTDOWN_TIMEOUT)
        await self.stop_engine()
        self.stop_demo()
        self.relay.close()
        self.exit()

    async def action_leave(self) -> None:
        """Quit the UI; the engine in the background goes on syncing."""
        pid = self.engine.pid if self.engine is not None else None
        busy = sum(v.in_flight + v.queued for v in self.dashboard.folders.views.values())
        await self.stop_engine()
        self.relay.close()
        doing = f" ({busy} files in flight or queued)" if busy else ""
        self.exit(
            message=f"syncapp goes on syncing in the background (pid {pid}){doing}; "
            "`syncapp stop` stops it, `syncapp` shows it again."
        )

    async def action_quit_and_stop(self) -> None:
        """Quit the UI and stop the engine: nothing syncs until the next start."""
        api = self.engine
        if api is not None:
            self.notify("Stopping the sync engine… (finishing what is in flight)")
            await api.stop_engine()
        await self.stop_engine(grace=60.0)
        self.relay.close()
        self.exit(message="syncapp stopped: nothing syncs until `syncapp` or `syncapp start`.")

    def stop_demo(self) -> None:
        server, self._demo_server = self._demo_server, None
        if server is not None:
            server.stop()

    # -- other screens ----------------------------------------------------------------------------

    def action_log(self) -> None:
        # One log screen, kept (installed): opening it again composes and mounts nothing.
        if not self.is_screen_installed("log"):
            self.install_screen(LogScreen(self.history), "log")
        self.push_screen("log")

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def start_demo(self) -> None:
        """From the welcome screen: the embedded WebDAV server, the demo folder, live."""
        from syncapp.davserver import DavServer
        from syncapp.demo import demo_dirs, demo_state_path, prepare, write_demo_config

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
        # The demo's engine runs here, on its own state: never the user's.
        self.state_path = demo_state_path()
        self.engine_factory = self._default_engine

        async def show() -> None:
            await self.dashboard.folders.sync_folders(config.folders.values())
            while not isinstance(self.screen, DashboardScreen):
                self.pop_screen()
            self.selected_folder = next(iter(config.folders), None)
            self._focus_selected()
            self.start_engine()

        self.call_later(show)
