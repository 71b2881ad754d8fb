"""What the user does to folders and remotes from the UI: forms, pause, rescan, the guard's
dialog, details and versions. Every call to the engine goes through ``EngineAPI``; what the
UI already knows (a folder's state, its held deletes) comes from the events it was shown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual import work

from syncapp import configedit, configfile
from syncapp.config import Config, FolderConfig, load_config
from syncapp.configedit import FolderDraft, RemoteDraft
from syncapp.engine import FolderState, GuardTripped
from syncapp.engine.api import EngineAPI, GuardChoice, PathPage, PathQuery
from syncapp.engine.versions import Version
from syncapp.errors import ConfigError, SyncappError
from syncapp.tui.detail import FolderDetailScreen
from syncapp.tui.dialogs import ConfirmDialog, DemoDialog, GuardDialog
from syncapp.tui.format import plural
from syncapp.tui.forms import FolderForm
from syncapp.tui.remotes import RemoteForm, RemotesScreen

if TYPE_CHECKING:
    from pathlib import Path

    from textual.app import App

    from syncapp.tui.activity import History
    from syncapp.tui.dashboard import DashboardScreen

    _Base = App[None]
else:
    _Base = object


class FolderActions(_Base):
    """Mixed into ``SyncApp``; the attributes below are the app's."""

    if TYPE_CHECKING:
        config: Config
        engine: EngineAPI | None
        selected_folder: str | None
        demo_folder: Path | None
        own_config_path: Path
        state_path: Path | None
        history: History
        config_lock: asyncio.Lock
        _guard_shown: set[str]
        _restoring: set[str]
        engine_factory: Any
        own_engine_factory: Any

        @property
        def dashboard(self) -> DashboardScreen: ...
        @property
        def engine_running(self) -> bool: ...
        def note(self, message: str, tone: str = "note") -> None: ...
        def api(self) -> EngineAPI: ...
        def start_engine(self) -> None: ...
        async def stop_engine(self, grace: float = ...) -> None: ...
        async def apply_config(self) -> None: ...
        async def show_engine_folders(self) -> None: ...
        def stop_demo(self) -> None: ...
        def _title_for(self, path: Path) -> str: ...

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
                configedit.display_path(self.config.path),
                configedit.display_path(self.own_config_path),
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
            config = load_config(path) if path.exists() else configedit.empty_config(path)
        except ConfigError as e:
            self.notify(f"Cannot leave the demo: {e}", severity="error", timeout=20)
            return False
        await self.stop_engine()
        self.workers.cancel_group(self, "demo")
        self.stop_demo()
        self.demo_folder = None
        self.state_path = None  # the user's own state, not the demo's
        self.engine_factory = self.own_engine_factory
        self.config = config
        self.sub_title = self._title_for(path)
        self.selected_folder = next(iter(config.folders), None)
        await self.dashboard.folders.sync_folders(config.folders.values())
        self.note(f"left the demo; folders are saved in {path}")
        if config.folders:
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
        """Save the folder into the config and (re)open it; an error or None."""
        error = await self._change_config(
            lambda api: api.save_folder(draft, editing),
            lambda config: configfile.folder_saved(config, draft, editing),
        )
        if error:
            return error
        new = self.config
        verb = "changed" if editing else "added"
        self.note(f"folder {draft.name} {verb}; config saved to {new.path}")
        await self.dashboard.folders.sync_folders(new.folders.values())
        if editing is not None:
            self.dashboard.transfers.forget_folder(editing)
        if self.engine is not None:
            await self._show_engine_folders()
        else:
            self.start_engine()  # it opens every configured folder
        return None

    async def show_config(self, new: Config) -> None:
        """Show ``new``, the config the engine runs on after a change made elsewhere (another
        view, the CLI, a reload): its folders' panels added, removed or updated, as after a
        change made here."""
        old = self.config
        if new == old:
            return
        self.config = new
        added = [n for n in new.folders if n not in old.folders]
        removed = [n for n in old.folders if n not in new.folders]
        changed = [n for n in new.folders if n in old.folders and new.folders[n] != old.folders[n]]
        for name in (*removed, *changed):
            self.dashboard.transfers.forget_folder(name)
        await self.dashboard.folders.sync_folders(new.folders.values())
        said = [
            f"folder{'s' if len(names) > 1 else ''} {', '.join(names)} {verb}"
            for verb, names in (("added", added), ("removed", removed), ("changed", changed))
            if names
        ]
        what = "; ".join(said) or "remotes or settings changed"
        self.note(f"the config was changed elsewhere: {what}")
        for screen in self.screen_stack:
            if isinstance(screen, RemotesScreen):
                screen.reload()
        if self.engine is not None:
            await self._show_engine_folders()
        if self.selected_folder not in new.folders:
            self._focus_selected()
        self.dashboard.update_pause_label()

    async def _show_engine_folders(self) -> None:
        # The change is saved; an engine gone meanwhile is said by its own message.
        with contextlib.suppress(SyncappError):
            await self.show_engine_folders()

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
        error = await self._change_config(
            lambda api: api.remove_folder(name),
            lambda config: configfile.folder_removed(config, name),
        )
        if error:
            return error
        new = self.config
        self.note(f"folder {name} removed from the config (no file deleted)")
        self.dashboard.transfers.forget_folder(name)
        await self.dashboard.folders.sync_folders(new.folders.values())
        self._focus_selected()
        return None

    def action_toggle_pause(self) -> None:
        name = self._selected()
        if name is not None:
            self.toggle_pause(name)

    def folder_running(self, name: str) -> bool:
        """The engine runs and has this folder open (as far as the UI was told)."""
        view = self.dashboard.folders.views.get(name)
        return self.engine is not None and view is not None and not view.open_error

    def toggle_pause(self, name: str) -> None:
        view = self.dashboard.folders.views.get(name)
        if view is None or not self.folder_running(name):
            self.notify(f"{name} is not running.", severity="warning")
            return
        if name in self._restoring:
            self.notify(f"{name}: still restoring the deleted files; it resumes by itself.")
            return
        if view.guard is not None:
            # Resuming would only trip the guard again: ask what to do with the deletes.
            self._guard_shown.discard(name)
            self._show_guard(view.guard)
            return
        paused = view.state is FolderState.PAUSED
        self._ask(
            lambda api: api.resume(name) if paused else api.pause(name),
            f"{name}: {'resumed' if paused else 'paused'}",
        )

    @work(group="calls", exit_on_error=False)
    async def _ask(self, call: Callable[[EngineAPI], Any], done: str = "") -> None:
        """One call to the engine in the background; its error, if any, in one line."""
        try:
            await call(self.api())
        except SyncappError as e:
            self.notify(str(e), severity="error")
            return
        if done:
            self.notify(done)

    def action_rescan(self) -> None:
        name = self._selected()
        if name is not None:
            self.rescan(name)

    def rescan(self, name: str) -> None:
        view = self.dashboard.folders.views.get(name)
        if not self.engine_running:
            self.start_engine()
            self.notify(f"{name}: starting the engine")
            return
        if view is not None and view.open_error:
            view.open_error = ""
            view.state = FolderState.SCANNING
            self.dashboard.folders.refresh_panels()
            self._reopen(name)
            self.notify(f"{name}: opening again")
            return
        self._ask(lambda api: api.rescan(name), f"{name}: rescanning")

    @work(group="calls", exit_on_error=False)
    async def _reopen(self, name: str) -> None:
        try:
            await self.api().rescan(name)
        except SyncappError as e:
            view = self.dashboard.folders.views.get(name)
            if view is not None:
                view.open_error = str(e).removeprefix(f"{name}: cannot open: ")
                self.dashboard.folders.refresh_panels()
            self.note(f"{name}: cannot open: {e}", "error")
            return
        infos = await self.api().folders()
        view = self.dashboard.folders.views.get(name)
        info = infos.get(name)
        if view is not None and info is not None and info.status is not None:
            view.seed(info.status)
            view.bwlimit = info.bwlimit
            self.dashboard.folders.refresh_panels()

    def _show_guard(self, event: GuardTripped) -> None:
        name = event.folder
        if name in self._guard_shown or name in self._restoring:
            return
        self._guard_shown.add(name)
        down = event.direction == "down"  # deleted on the remote: the trash here, or upload

        def decided(choice: str | None) -> None:
            self._guard_shown.discard(name)
            if self.engine is None:
                return
            if choice == "delete":
                self._ask(lambda api: api.decide_guard(name, GuardChoice.DELETE))
                said = "moving them to the trash here" if down else "deletes released"
                self.note(f"{name}: {said} by the user", "warning")
            elif choice == "restore":
                self._restoring.add(name)  # from now on: no second dialog, p waits
                self._restore_held(name, down)

        cfg = self.config.folders.get(name)
        note = ""
        if cfg is not None and cfg.versions and not down:
            note = (
                f"Files deleted on the remote are kept under .syncapp-versions/ there for "
                f"{cfg.keep_versions}."
            )
        self.push_screen(GuardDialog(event, note), decided)

    @work(group="restore-held", exit_on_error=False)
    async def _restore_held(self, name: str, down: bool = False) -> None:
        """Release the guard by downloading the held deletes back (``down``: deleted on the
        remote, so the local files upload again)."""
        if down:
            self.notify(f"{name}: restoring the deleted files to the remote…")
        else:
            self.notify(f"{name}: downloading the deleted files back from the remote…")
        try:
            n = await self.api().decide_guard(name, GuardChoice.RESTORE)
        except (SyncappError, OSError) as e:
            self.notify(f"{name}: restoring failed: {e}", severity="error", timeout=15)
            self.note(f"{name}: restoring the deleted files failed: {e}", "error")
            return
        finally:
            self._restoring.discard(name)
        done = f"{name}: {plural(n or 0, 'file')} restored from the remote; nothing was deleted"
        if down:
            files = plural(n or 0, "file")
            done = f"{name}: {files} restored to the remote (uploaded again); none was trashed"
        self.notify(done)
        self.note(done, "success")

    # -- folder details, retry and versions -------------------------------------------------------

    def action_folder_details(self) -> None:
        name = self._selected()
        if name is not None:
            self.open_details(name)

    def open_details(self, name: str) -> None:
        # The last folder's details screen is kept (installed): opened again, it composes and
        # mounts nothing and starts afresh.
        kept = self.get_screen("details") if self.is_screen_installed("details") else None
        if kept in self.screen_stack:  # open already, under its versions: a new one on top
            self.push_screen(FolderDetailScreen(name, partial(self.folder_paths, name)))
            return
        if isinstance(kept, FolderDetailScreen) and kept.folder == name:
            kept.start_afresh()
        else:
            if kept is not None:
                self.uninstall_screen("details")
                kept.remove()
            fresh = FolderDetailScreen(name, partial(self.folder_paths, name))
            self.install_screen(fresh, "details")
        self.push_screen("details")

    async def folder_paths(self, name: str, query: PathQuery) -> PathPage:
        """A page of the folder's paths not in sync with their reasons (``query.everything``:
        its synced files too), and the counts of all. Empty while the folder is not running."""
        if not self.folder_running(name):
            return PathPage([], {}, 0)
        try:
            return await self.api().path_page(name, query)
        except SyncappError:
            return PathPage([], {}, 0)

    def retry_failed(self, name: str) -> None:
        view = self.dashboard.folders.views.get(name)
        if view is None or not self.folder_running(name):
            self.notify(f"{name} is not running.", severity="warning")
            return
        if not view.failed:
            self.notify(f"{name}: nothing has failed.")
            return
        self._retry(name)

    @work(group="calls", exit_on_error=False)
    async def _retry(self, name: str) -> None:
        try:
            n = await self.api().retry(name)
        except SyncappError as e:
            self.notify(str(e), severity="error")
            return
        if not n:
            self.notify(f"{name}: nothing has failed.")
            return
        self.notify(f"{name}: trying {plural(n, 'failed path')} again")
        self.note(f"{name}: {plural(n, 'failed path')} retried by the user")

    async def list_versions(self, name: str, rel: str) -> list[Version]:
        """``rel``'s current remote copy and kept versions, newest first."""
        if not self.folder_running(name):
            raise SyncappError(f"{name} is not running")
        return list(await self.api().list_versions(name, rel))

    async def restore_version(self, name: str, version: Version, dest: str | None) -> str:
        """Write ``version`` back into the folder (or to ``dest``); returns where it went."""
        if not self.folder_running(name):
            raise SyncappError(f"{name} is not running")
        target = dest or str(self.config.folders[name].path / version.path)
        await self.api().restore_version(name, version, dest)
        self.note(f"{name}: restored {version.path} to {configedit.display_path(target)}")
        return target

    # -- remotes ----------------------------------------------------------------------------------

    def action_remotes(self) -> None:
        self.push_screen(RemotesScreen())

    def open_remote_form(self, then: Callable[[str | None], Any] | None = None) -> None:
        self.push_screen(RemoteForm(self.config, self.save_remote), then)

    async def save_remote(self, draft: RemoteDraft, editing: str | None) -> str | None:
        error = await self._change_config(
            lambda api: api.save_remote(draft, editing),
            lambda config: configfile.remote_saved(config, draft, editing),
        )
        if error:
            return error
        self.note(f"remote {draft.name} {'changed' if editing else 'added'}")
        if editing is not None:
            # Folders on this remote were reopened by the engine with the new settings.
            await self.dashboard.folders.sync_folders(self.config.folders.values())
            await self._show_engine_folders()
        return None

    async def remove_remote(self, name: str) -> str | None:
        error = await self._change_config(
            lambda api: api.remove_remote(name),
            lambda config: configfile.remote_removed(config, name),
        )
        if error:
            return error
        self.note(f"remote {name} removed from the config")
        return None

    async def _change_config(
        self,
        through_engine: Callable[[EngineAPI], Awaitable[Config]],
        here: Callable[[Config], Config],
    ) -> str | None:
        """The running engine makes the change (it writes the config file and opens, closes or
        reopens folders); only while none runs is the file written here. Either way the file is
        read again first, so a hand edit is kept; ``self.config`` becomes what was written. An
        error in words (``key: problem`` for a refused field), or None."""
        api = self.engine
        try:
            async with self.config_lock:
                if api is not None:
                    self.config = await through_engine(api)
                else:
                    self.config = await asyncio.to_thread(configfile.edit_file, self.config, here)
        except ConfigError as e:
            return f"{e.key}: {e.problem}" if e.key else e.problem
        except OSError as e:
            return f"cannot write {self.config.path}: {e.strerror or e}"
        except SyncappError as e:
            return str(e)
        return None
