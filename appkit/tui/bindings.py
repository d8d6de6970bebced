"""Every key binding of the chat UI in one table: the widgets, the help screen and appkit.toml read it.

Each binding has an id; ``[tui.bindings]`` in appkit.toml maps ids to other keys:

    [tui.bindings]
    new = "ctrl+n"
    export = "f6"
    rate_up = "+,="        # several keys: comma separated

Textual applies the overrides through its keymap, so a changed key shows in the footer and in
the help screen (F1) as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.binding import Binding

    from appkit.config import Settings

# Where a binding works; the help screen groups by these.
GLOBAL = "anywhere"
CONVERSATIONS = "conversation list"
MESSAGE = "a selected message"
SUPPORT = "the support chat"
TOOL = "a tool (writer, sentiment ...)"


TAB_KEYS = ("f2", "f3", "f4", "f6", "f7", "f8")


@dataclass(frozen=True)
class Key:
    """One binding: its id (the name in appkit.toml), default key(s), action and what it does."""

    id: str
    key: str
    action: str
    description: str
    scope: str = GLOBAL
    show: bool = False  # in the footer
    priority: bool = False  # before the focused widget sees the key (e.g. the prompt input)
    footer: str = ""  # a shorter label for the footer (default: the description)


KEYS: tuple[Key, ...] = (
    Key("help", "f1", "app.help", "Help", show=True),
    Key("new", "ctrl+n", "app.new_conversation", "New", show=True),
    Key("search", "ctrl+f", "app.search", "Search", show=True),
    Key("stop", "escape", "app.stop", "Stop reply / back to the prompt"),
    Key("regenerate", "ctrl+g", "app.regenerate", "Regenerate", show=True),
    Key("export", "ctrl+s", "app.export", "Export", show=True),
    Key("rename", "ctrl+r", "app.rename", "Rename conversation"),
    Key("archive", "ctrl+o", "app.archive", "Archive / restore conversation"),
    Key("show_archived", "ctrl+l", "app.show_archived", "List archived / active conversations"),
    Key("sidebar", "ctrl+b", "app.toggle_sidebar", "Show / hide the conversation list"),
    Key("theme", "ctrl+t", "app.toggle_theme", "Light / dark theme"),
    # One tab per installed app, in the order of the tabs (F5 is a tool's "run").
    *(Key(f"tab_{n}", key, f"app.switch_tab({n})", f"Tab {n}") for n, key in enumerate(TAB_KEYS, start=1)),
    Key("quit", "ctrl+q", "app.quit", "Quit", priority=True),
    Key("agent_reply", "ctrl+y", "agent_reply", "Answer as a human agent (again: back to the customer)",
        scope=SUPPORT, show=True, footer="Agent"),
    Key("delete", "delete", "delete", "Delete conversation (asks first)", scope=CONVERSATIONS),
    Key("copy", "c", "copy", "Copy the message", scope=MESSAGE),
    Key("rate_up", "plus,equals_sign", "rate(1)", "Rate the reply good (+ optional comment)", scope=MESSAGE),
    Key("rate_down", "minus", "rate(-1)", "Rate the reply bad (+ optional comment)", scope=MESSAGE),
    Key("source", "s", "source", "Where the reply came from: the past case, the scores", scope=MESSAGE),
    Key("run", "f5", "run", "Run the tool: write the draft, analyze the texts ...", scope=TOOL),
)
BY_ID = {k.id: k for k in KEYS}

# Keys that are not bindings of their own but are part of using the UI; listed on the help screen.
EXTRA_HELP: tuple[tuple[str, str, str], ...] = (
    ("enter", "Send the message / open the highlighted conversation", GLOBAL),
    ("up / down", "From the prompt: select messages; in the list: move", GLOBAL),
    ("tab / shift+tab", "Move between the list, the messages and the prompt", GLOBAL),
    ("any letter", "In the conversation list: start searching", CONVERSATIONS),
    ("ctrl+p", "Command palette: every action by name", GLOBAL),
)


def bindings(scope: str) -> list[Binding]:
    """Textual Binding objects for the keys of ``scope``, carrying their ids for the keymap."""
    from textual.binding import Binding

    out = []
    for k in KEYS:
        if k.scope != scope:
            continue
        # Actions in the table say app.X so the help screen can name them; on the App itself
        # the namespace is implied.
        action = k.action.removeprefix("app.") if scope == GLOBAL else k.action
        out.append(Binding(k.key, action, k.footer or k.description, show=k.show, priority=k.priority, id=k.id,
                           tooltip=k.description if k.footer else ""))
    return out


def keymap_from_settings(settings: Settings) -> tuple[dict[str, str], list[str]]:
    """(keymap, problems) from ``[tui.bindings]``: valid overrides, and one line per bad entry."""
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for name, value in settings.tui.bindings.items():
        if name not in BY_ID:
            problems.append(f"appkit.toml [tui.bindings]: unknown binding {name!r}; known: {', '.join(BY_ID)}.")
        elif not value.strip():
            problems.append(f"appkit.toml [tui.bindings]: {name} must be a key such as \"ctrl+n\", not {value!r}.")
        else:
            keymap[name] = ",".join(part.strip() for part in value.split(",") if part.strip())
    return keymap, problems


def help_rows(keymap: dict[str, str], tabs: Sequence[str] = ()) -> list[tuple[str, str, str, str]]:
    """(scope, keys, description, id) for every binding, with the keymap's overrides applied;
    ``tabs``: the tabs' titles, named beside their keys (keys of tabs that are not there are left out)."""
    titles = {f"tab_{n}": title for n, title in enumerate(tabs, start=1)}
    shown = [k for k in KEYS if not (tabs and k.id.startswith("tab_") and k.id not in titles)]
    rows = [(k.scope, display(keymap.get(k.id, k.key)), k.description + (f": {titles[k.id]}" if k.id in titles else ""),
             k.id) for k in shown]
    rows += [(scope, keys, description, "") for keys, description, scope in EXTRA_HELP]
    order = {GLOBAL: 0, SUPPORT: 1, CONVERSATIONS: 2, MESSAGE: 3, TOOL: 4}
    return sorted(rows, key=lambda r: order.get(r[0], 9))


def display(keys: str) -> str:
    """``plus,equals_sign`` -> ``+ / =`` (how a person reads a key list)."""
    names = {"plus": "+", "minus": "-", "equals_sign": "=", "escape": "esc", "question_mark": "?"}
    return " / ".join(names.get(k.strip(), k.strip()) for k in keys.split(","))
