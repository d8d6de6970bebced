"""The sentiment app's pane: paste texts (one per line) or a file path; labels per line and a distribution bar.

Written against the API issue 6 describes, ``load_app("sentiment").analyze(list_of_texts)``
returning objects with ``.label`` and ``.probabilities`` (a dict); ``_analyze`` below is the only
place that calls it.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, DataTable, Static, TextArea

from appkit.errors import AppkitError, DataError
from appkit.tui.apps_panels import MissingPanel, Opened, Opener, open_app
from appkit.tui.bindings import TOOL, bindings
from appkit.tui.widgets.status import StatusChanged, StatusInfo

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from appkit.config import Settings

APP = "sentiment"
MAX_TEXTS = 5000  # the UI is for a look; `appkit sentiment analyze` streams files of any size
BAR_STYLES = ("$primary", "$secondary", "$accent", "$warning")
LABEL_STYLES = {"positive": "$success", "pos": "$success", "negative": "$error", "neg": "$error",
                "neutral": "$warning"}


def texts_from_input(value: str) -> list[str]:
    """The texts to analyze: the lines typed, or the lines / text column of a file whose path was typed."""
    value = value.strip()
    if value and "\n" not in value:
        path = Path(value).expanduser()
        if path.is_file():
            return _read_file(path)
    return [line.strip() for line in value.splitlines() if line.strip()][:MAX_TEXTS]


def _read_file(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            if path.suffix.lower() in (".csv", ".tsv"):
                reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
                columns = reader.fieldnames or []
                if not columns:
                    raise DataError(f"{path}: the file is empty.")
                column = next((c for c in columns if c.lower() in ("text", "sentence", "review")), columns[0])
                texts = [str(row.get(column) or "").strip() for row in reader]
            else:
                texts = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read ({e}).") from None
    return [t for t in texts if t][:MAX_TEXTS]


def distribution(labels: list[str], width: int = 40) -> Content:
    """A stacked bar of label shares plus a legend, e.g. ``████████░░░ positive 62% · negative 38%``."""
    counts = Counter(labels)
    total = sum(counts.values()) or 1
    bar, legend = Content(""), []
    for i, (label, n) in enumerate(counts.most_common()):
        style = LABEL_STYLES.get(label.lower()) or BAR_STYLES[i % len(BAR_STYLES)]
        cells = max(1, round(width * n / total))
        bar += Content.styled("█" * cells, style)
        legend.append(Content.styled("■ ", style) + Content(f"{label} {100 * n / total:.0f}% ({n})"))
    return bar + Content("\n") + Content("  ").join(legend)


class SentimentPane(Vertical):
    """Input on top, distribution bar and per-line table below."""

    DEFAULT_CSS = """
    SentimentPane {
        height: 1fr;
        padding: 0 1;
    }
    #sentiment-input {
        height: 6;
        margin-top: 1;
    }
    #sentiment-actions {
        height: 1;
        & > #sentiment-note {
            margin-left: 2;
            color: $text-muted;
        }
    }
    #distribution {
        height: auto;
        margin-top: 1;
    }
    #sentiment-table {
        height: 1fr;
    }
    """

    app_name = APP
    BINDINGS: ClassVar[list[BindingType]] = bindings(TOOL)

    def __init__(self, *, settings: Settings, model: str | None = None, opener: Opener | None = None,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.model = model
        self.opener = opener
        self.opened: Opened | None = None
        self.info: dict[str, Any] = {}
        self.status = StatusInfo(APP)
        self._load_started = False

    def compose(self) -> ComposeResult:
        yield TextArea(id="sentiment-input", placeholder="Paste texts, one per line, or a file path (.txt, .csv)")
        with Horizontal(id="sentiment-actions"):
            yield Button("Analyze (F5)", id="analyze", variant="primary", compact=True, disabled=True)
            yield Static("Loading the sentiment model…", id="sentiment-note")
        yield Static(id="distribution")
        yield DataTable(id="sentiment-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("#", "label", "conf.", "text")

    def activate(self) -> None:
        """Load the classifier the first time the tab is shown."""
        if self.opened is None and not self._load_started:
            self._load_started = True
            self.load()

    def focus_default(self) -> None:
        self.query_one("#sentiment-input").focus()

    @work(thread=True, exclusive=True, group="sentiment-load", exit_on_error=False)
    def load(self) -> None:
        opened = open_app(APP, settings=self.settings, model=self.model, opener=self.opener)
        try:
            self.app.call_from_thread(self._ready, opened)
        except RuntimeError:
            pass

    async def _ready(self, opened: Opened) -> None:
        self.opened, self._load_started = opened, False
        for old in self.query(MissingPanel):
            await old.remove()
        if not opened.ok:
            note = "labeled.csv has a text column and a label column."
            await self.mount(MissingPanel(opened, note=note), before=self.query_one("#sentiment-input"))
            self.query_one("#sentiment-note", Static).update("")
            self._report(opened.problem)
            return
        info = getattr(opened.app, "describe", lambda: {})
        try:
            self.info = info() or {}
        except Exception:  # a status bar detail is not worth failing the app for
            self.info = {}
        self.query_one("#analyze", Button).disabled = False
        self.query_one("#sentiment-note", Static).update("F5 analyzes; results per line below.")
        self._report("ready")

    def _report(self, state: str) -> None:
        info = self.info
        self.status = StatusInfo(APP, state=state, model=str(info.get("name") or ""),
                                 parameters=info.get("parameters"), device=str(info.get("device") or ""),
                                 speed=False)
        self.post_message(StatusChanged(self.status))

    @on(Button.Pressed, "#retry")
    def _retry(self) -> None:
        self.opened = None
        self._report("loading")
        self.activate()

    @on(Button.Pressed, "#analyze")
    def _pressed(self) -> None:
        self.do_run()

    def action_run(self) -> None:
        self.do_run()

    def do_run(self) -> None:
        if self.opened is None or not self.opened.ok:
            self.notify("The sentiment model is not available: see the panel for how to train it.",
                        severity="warning")
            return
        try:
            texts = texts_from_input(self.query_one("#sentiment-input", TextArea).text)
        except AppkitError as e:
            self.notify(str(e), severity="error")
            return
        if not texts:
            self.notify("Paste some text (one per line) or a file path first.", severity="warning")
            return
        self._report("busy")
        self.query_one("#sentiment-note", Static).update(f"Analyzing {len(texts)} texts…")
        self._analyze(texts)

    @work(thread=True, exclusive=True, group="sentiment-run", exit_on_error=False)
    def _analyze(self, texts: list[str]) -> None:
        """The one call into the sentiment app (see the module docstring)."""
        try:
            results = list(self.opened.app.analyze(texts))
            error = ""
        except AppkitError as e:
            results, error = [], str(e)
        except Exception as e:
            results, error = [], f"{type(e).__name__}: {e}"
        try:
            self.app.call_from_thread(self._show, texts, results, error)
        except RuntimeError:
            pass

    def _show(self, texts: list[str], results: list[Any], error: str) -> None:
        self._report("ready")
        if error:
            self.notify(error, severity="error", timeout=10)
            self.query_one("#sentiment-note", Static).update("")
            return
        table = self.query_one(DataTable)
        table.clear()
        labels = []
        for i, (text, result) in enumerate(zip(texts, results), start=1):
            label = str(getattr(result, "label", result))
            probabilities = getattr(result, "probabilities", None) or {}
            confidence = probabilities.get(label)
            labels.append(label)
            table.add_row(str(i), label, "" if confidence is None else f"{confidence:.2f}",
                          text if len(text) <= 200 else text[:199] + "…")
        self.query_one("#distribution", Static).update(distribution(labels))
        self.query_one("#sentiment-note", Static).update(f"{len(labels)} texts analyzed.")

    def do_stop(self) -> None:
        """Nothing streams here; Esc just returns to the text box."""
        self.query_one("#sentiment-input").focus()

    def close(self) -> None:
        app = self.opened.app if self.opened is not None and self.opened.ok else None
        closer = getattr(app, "close", None)
        if callable(closer):
            closer()
