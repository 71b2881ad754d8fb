"""The command palette's provider: what works on the screen it was opened from.

On the dashboard: its actions, by name and per folder. In a folder's details: that folder's.
On the welcome screen: its steps (a folder only once there is a remote). Elsewhere (forms, the
remotes screen, the log): only what applies anywhere (the theme).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider


class SyncCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        from syncapp.tui.app import SyncApp
        from syncapp.tui.dashboard import DashboardScreen
        from syncapp.tui.detail import FolderDetailScreen
        from syncapp.tui.welcome import WelcomeScreen

        app = self.app
        if not isinstance(app, SyncApp):
            return []
        theme = (
            "Toggle light/dark theme",
            "switch between the light and dark theme",
            app.action_toggle_theme,
        )
        screen = self.screen
        if isinstance(screen, FolderDetailScreen):
            name = screen.folder
            return [
                self._pause_command(app, name),
                (
                    f"Retry failed paths in {name}",
                    "ctrl+r: try the failed paths again now",
                    partial(app.retry_failed, name),
                ),
                (
                    f"Rescan {name}",
                    "compare the folder with what was synced",
                    partial(app.rescan, name),
                ),
                theme,
            ]
        if isinstance(screen, WelcomeScreen):
            steps = [("Add a remote", "m: where the files go", screen.action_add_remote)]
            if app.config.remotes:
                steps.append(("Add a folder", "a: what to sync", screen.action_add_folder))
            steps.append(("Start the demo", "s: a sample folder, live", screen.action_demo))
            return [*steps, theme]
        if not isinstance(screen, DashboardScreen):
            return [theme]
        out: list[tuple[str, str, Callable[[], Any]]] = [
            ("Add folder", "a: add a folder to sync", app.action_add_folder),
            ("Manage remotes", "m: add, edit, test or remove remotes", app.action_remotes),
            ("Full log", "l: every event this session", app.action_log),
            theme,
        ]
        if app.attached:
            # q leaves the background engine syncing; this is the way to end it too.
            out.append(
                (
                    "Quit and stop syncing",
                    "Q: quit and stop the background engine (nothing syncs until restarted)",
                    partial(app.run_action, "quit_and_stop"),
                )
            )
        for name in app.config.folders:
            out += [
                (
                    f"Edit folder {name}",
                    "e: change its path, remote, ignores",
                    partial(app.edit_folder, name),
                ),
                (
                    f"Remove folder {name}",
                    "d: stop syncing it (deletes no file)",
                    partial(app.remove_folder, name),
                ),
                self._pause_command(app, name),
                (
                    f"Details of {name}",
                    "enter: every path not in sync and why; versions of a file",
                    partial(app.open_details, name),
                ),
                (
                    f"Retry failed paths in {name}",
                    "ctrl+r in its details: try the failed paths again now",
                    partial(app.retry_failed, name),
                ),
                (
                    f"Rescan {name}",
                    "r: compare the folder with what was synced",
                    partial(app.rescan, name),
                ),
            ]
        return out

    @staticmethod
    def _pause_command(app: Any, name: str) -> tuple[str, str, Callable[[], Any]]:
        from syncapp.engine import FolderState

        view = app.dashboard.folders.views.get(name)
        paused = view is not None and view.state is FolderState.PAUSED
        verb = "Resume" if paused else "Pause"
        return (f"{verb} {name}", f"p: {verb.lower()} syncing it", partial(app.toggle_pause, name))

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
