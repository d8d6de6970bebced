"""``appkit NAME chat``: the Textual app that holds one tab per installed app, the status bar and the keys.

The tabs come from the app registry (``available_apps()``, by name): each app brings its own
pane (``App.pane``), so a user's app gets a tab exactly as the first-party ones do. The app
itself only routes: a key binding becomes ``do_<action>`` on the active pane, and the status
bar shows whatever the active pane last reported.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.css.query import NoMatches
from textual.lazy import Lazy
from textual.widget import Widget
from textual.widgets import Footer, TabbedContent, TabPane

from appkit.tui.bindings import BY_ID, GLOBAL, KEYS, TAB_KEYS, bindings, display, keymap_from_settings
from appkit.tui.screens.help import HelpScreen
from appkit.tui.widgets.status import StatusBar, StatusChanged, StatusInfo

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.screen import Screen

    from appkit.apps import App as AppkitApp
    from appkit.apps import Opener
    from appkit.config import Settings

# Actions that do not depend on the active pane (and work on any pane).
APP_ACTIONS = {"help", "toggle_theme", "switch_app", "switch_tab", "quit"}
# The app whose conversations the Insights tab reports on (the tab is there when it is installed).
INSIGHTS_APP = "support"


class ChatApp(App[None]):
    """The terminal UI for appkit's apps."""

    CSS_PATH = Path(__file__).with_name("chat.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "appkit chat"
    BINDINGS: ClassVar[list[BindingType]] = bindings(GLOBAL)

    def __init__(self, settings: Settings, *, app: str | None = None, model: str | None = None,
                 opener: Opener | None = None, apps: Mapping[str, AppkitApp] | None = None,
                 **pane_options: Any) -> None:
        """``app``: the tab to open on (default: the first); ``model`` and ``pane_options`` (e.g. the
        support pane's ``conversation``) go to that tab's pane; ``apps``: the tabs (default: the registry).

        Raises:
            ConfigError: ``app`` is not an installed app, or no app is installed.
        """
        super().__init__()
        from appkit.apps import available_apps
        from appkit.errors import ConfigError

        self.apps = dict(apps if apps is not None else available_apps())
        if not self.apps:
            raise ConfigError("no app is installed, so the terminal UI has no tab to show.")
        if app is not None and app not in self.apps:
            raise ConfigError(f"--app {app!r} is not an installed app; installed: {', '.join(self.apps)}.")
        self.settings = settings
        self.initial_app = app or next(iter(self.apps))
        self.model = model
        self.pane_options = pane_options
        self.opener = opener  # tests pass a loader; by default appkit.apps.load_app
        self.bindings_map, self.binding_problems = keymap_from_settings(settings)
        self.configured_theme = settings.tui.theme
        self.panes: dict[str, Widget] = {}

    def compose(self) -> ComposeResult:
        for name, app in self.apps.items():
            # --model and the command's options apply to the app named on the command line.
            options = {"model": self.model, **self.pane_options} if name == self.initial_app else {}
            self.panes[name] = app.pane(settings=self.settings, opener=self.opener, id=f"{name}-pane", **options)
        titles = {name: app.title for name, app in self.apps.items()}
        if INSIGHTS_APP in self.apps:  # the report's numbers for the support app, live
            from appkit.insights.pane import NAME, TITLE, InsightsPane

            self.panes[NAME], titles[NAME] = InsightsPane(settings=self.settings, app=INSIGHTS_APP,
                                                          id=f"{NAME}-pane"), TITLE
        # self.panes is kept: on exit the screens are gone before the app's Unmount runs.
        with TabbedContent(initial=self.initial_app, id="apps"):
            for n, (name, pane) in enumerate(self.panes.items(), start=1):
                key = f" {_key(f'tab_{n}', self.bindings_map)}" if n <= len(TAB_KEYS) else ""
                with TabPane(f"{titles[name]}{key}", id=name):
                    # Hidden tabs mount after the first frame: styling their widgets took about
                    # half of the time to a usable screen.
                    yield pane if name == self.initial_app else Lazy(pane)
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        if self.configured_theme in self.available_themes:
            if self.theme != self.configured_theme:  # a theme change restyles every widget
                self.theme = self.configured_theme
        else:
            self.notify(f"appkit.toml [tui] theme {self.configured_theme!r} is not one of "
                        f"{', '.join(sorted(self.available_themes))}.", severity="warning", timeout=10)
        self.set_keymap(self.bindings_map)
        for problem in self.binding_problems:
            self.notify(problem, severity="warning", timeout=10)
        self.active_pane.activate()
        self.active_pane.focus_default()
        self.query_one(StatusBar).show(self.active_pane.status)

    # -- panes -------------------------------------------------------------------------------

    @property
    def active_pane(self) -> Any:
        """The pane of the shown tab (None for the moment a lazy pane is not mounted yet)."""
        active = self.query_one("#apps", TabbedContent).active or self.initial_app
        try:
            return self.query_one(f"#{active}-pane")
        except NoMatches:
            return None

    @on(TabbedContent.TabActivated)
    def _tab_activated(self) -> None:
        pane = self.active_pane
        focused = self.focused
        if focused is not None and (pane is None or pane not in focused.ancestors_with_self):
            # Focus left in the tab just hidden (a prompt that a loader disables hands it on) would
            # make TabbedContent show that tab again.
            self.set_focus(None)
        if pane is None:
            self.call_after_refresh(self._tab_activated)
            return
        pane.activate()
        pane.focus_default()
        self.query_one(StatusBar).show(pane.status)
        self.refresh_bindings()

    @on(StatusChanged)
    def _status_changed(self, event: StatusChanged) -> None:
        if event.info.app == getattr(self.active_pane, "app_name", None):
            self.query_one(StatusBar).show(event.info)

    async def on_unmount(self) -> None:
        for pane in self.panes.values():
            closing = pane.close()  # type: ignore[attr-defined]  # every AppPane has one
            if inspect.isawaitable(closing):
                await closing

    # -- actions: routed to the active pane ----------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in {k.action.removeprefix("app.").split("(")[0] for k in KEYS if k.scope == GLOBAL}:
            return True  # Textual's own actions (command palette, quit ...)
        if len(self.screen_stack) > 1 and action != "quit":
            return False  # a dialog is open: its keys only
        if action in APP_ACTIONS:
            return True
        # None greys the key out in the footer: it exists, but not in this app.
        return True if hasattr(self.active_pane, f"do_{action}") else None

    async def _route(self, action: str) -> None:
        handler = getattr(self.active_pane, f"do_{action}", None)
        if handler is None:
            return
        result = handler()
        if inspect.isawaitable(result):
            await result

    async def action_new_conversation(self) -> None:
        await self._route("new_conversation")

    async def action_search(self) -> None:
        await self._route("search")

    async def action_stop(self) -> None:
        await self._route("stop")

    async def action_regenerate(self) -> None:
        await self._route("regenerate")

    async def action_export(self) -> None:
        await self._route("export")

    async def action_rename(self) -> None:
        await self._route("rename")

    async def action_archive(self) -> None:
        await self._route("archive")

    async def action_show_archived(self) -> None:
        await self._route("show_archived")

    async def action_toggle_sidebar(self) -> None:
        await self._route("toggle_sidebar")

    def action_switch_app(self, name: str) -> None:
        self.query_one("#apps", TabbedContent).active = name

    def action_switch_tab(self, number: int) -> None:
        """Show tab ``number`` (1 = the first); nothing when there are fewer tabs."""
        names = list(self.panes)
        if 1 <= number <= len(names):
            self.action_switch_app(names[number - 1])

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.bindings_map, [app.title for app in self.apps.values()]))

    def action_toggle_theme(self) -> None:
        tui = self.settings.tui
        self.theme = tui.light_theme if self.current_theme.dark else tui.dark_theme

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette (ctrl+p) offers every action by name, with its key."""
        yield from super().get_system_commands(screen)
        for k in KEYS:
            if k.scope != GLOBAL or k.id in ("help", "quit", "stop"):
                continue
            action = k.action.removeprefix("app.")
            yield SystemCommand(f"{k.description} ({display(self.bindings_map.get(k.id, k.key))})",
                                f"binding id: {k.id}", _runner(self, action))


def _runner(app: ChatApp, action: str) -> Any:
    async def run() -> None:
        await app.run_action(action)

    return run


def _key(binding_id: str, keymap: dict[str, str]) -> str:
    return display(keymap.get(binding_id, BY_ID[binding_id].key)).upper()


def run_chat_app(settings: Settings, *, app: str | None = None, model: str | None = None, **pane_options: Any) -> None:
    """Build and run the UI (blocks until the user quits)."""
    ChatApp(settings, app=app, model=model, **pane_options).run()


__all__ = ["ChatApp", "StatusInfo", "run_chat_app"]
