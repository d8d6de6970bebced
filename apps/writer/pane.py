"""The writer app's pane: a brief (title, format, tone, length) and the draft as Markdown.

Written against the API issue 6 describes, ``load_app("writer").write(title=, format=, tone=,
words=)`` returning an object with ``.text`` (or ``.stream(...)`` yielding text pieces); the only
place that calls it is ``_write`` below, so adjusting to the final API is a one-function change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Markdown, Select, Static

from appkit.errors import AppkitError
from appkit.tui.apps_panels import MissingPanel, Opened, Opener, open_app
from appkit.tui.bindings import TOOL, bindings
from appkit.tui.streaming import stream_batched
from appkit.tui.widgets.status import StatusChanged, StatusInfo

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from appkit.config import Settings

APP = "writer"
FORMATS = ("blog", "social", "email", "product")


class WriterPane(Vertical):
    """Brief form on top, draft below."""

    DEFAULT_CSS = """
    WriterPane {
        height: 1fr;
    }
    #brief {
        height: auto;
        padding: 1 1 0 1;
    }
    #brief-row {
        height: 1;
        margin-top: 1;
        & > Select {
            width: 14;
        }
        & > #writer-tone {
            width: 1fr;
            margin: 0 1;
        }
        & > #writer-words {
            width: 8;
            margin-right: 1;
        }
    }
    #draft {
        height: 1fr;
        margin-top: 1;
        border-top: hkey $border-blurred;
        padding: 0 1;
    }
    #draft-note {
        padding: 1;
        color: $text-muted;
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
        self.status = StatusInfo(APP)
        self.info: dict[str, Any] = {}
        self.writing = False
        self._load_started = False
        self._stop = False

    def compose(self) -> ComposeResult:
        with Vertical(id="brief"):
            yield Input(placeholder="Title of the piece", id="writer-title", compact=True)
            with Horizontal(id="brief-row"):
                yield Select([(f, f) for f in FORMATS], value="blog", allow_blank=False, id="writer-format",
                             compact=True)
                yield Input(placeholder="tone (e.g. friendly)", id="writer-tone", compact=True)
                yield Input("300", placeholder="words", type="integer", id="writer-words", compact=True)
                yield Button("Write (F5)", id="write", variant="primary", compact=True, disabled=True)
        yield VerticalScroll(Static("Loading the writer…", id="draft-note"), id="draft")

    def activate(self) -> None:
        """Load the writer the first time its tab is shown (it costs nothing until then)."""
        if self.opened is None and not self._load_started:
            self._load_started = True
            self.load()

    def focus_default(self) -> None:
        self.query_one("#writer-title").focus()

    @work(thread=True, exclusive=True, group="writer-load", exit_on_error=False)
    def load(self) -> None:
        opened = open_app(APP, settings=self.settings, model=self.model, opener=self.opener)
        info: dict[str, Any] = {}
        if opened.ok and hasattr(opened.app, "describe"):
            try:
                info = opened.app.describe()
            except Exception:  # a status bar detail is not worth failing the app for
                info = {}
        try:
            self.app.call_from_thread(self._ready, opened, info)
        except RuntimeError:
            pass

    async def _ready(self, opened: Opened, info: dict[str, Any]) -> None:
        self.opened, self._load_started = opened, False
        draft = self.query_one("#draft")
        await draft.remove_children()
        if not opened.ok:
            await draft.mount(MissingPanel(opened, note="posts/ holds your own articles (Markdown or text)."))
            self._report(opened.problem)
            return
        self.info = info
        await draft.mount(Static("Fill in the brief and press F5 (or Enter in a field) to write a draft.",
                                 id="draft-note"))
        self.query_one("#write", Button).disabled = False
        self._report("ready")

    def _report(self, state: str) -> None:
        info = self.info
        name = info.get("name") or getattr(self.writer, "model_name", "")
        self.status = StatusInfo(APP, state=state, model=str(name),
                                 parameters=info.get("parameters"), device=str(info.get("device") or ""),
                                 safety=str(info.get("safety") or ""), speed=False)
        self.post_message(StatusChanged(self.status))

    @property
    def writer(self) -> Any:
        return self.opened.app if self.opened is not None and self.opened.ok else None

    @on(Button.Pressed, "#retry")
    def _retry(self) -> None:
        self.opened = None
        self._report("loading")
        self.activate()

    @on(Button.Pressed, "#write")
    @on(Input.Submitted)
    async def _submit(self) -> None:
        await self.do_run()

    def brief(self) -> dict[str, Any]:
        words = self.query_one("#writer-words", Input).value
        return {
            "title": self.query_one("#writer-title", Input).value.strip(),
            "format": str(self.query_one("#writer-format", Select).value),
            "tone": self.query_one("#writer-tone", Input).value.strip() or None,
            "words": int(words) if words.strip().isdigit() else None,
        }

    async def action_run(self) -> None:
        await self.do_run()

    async def do_run(self) -> None:
        if self.writer is None:
            self.notify("The writer is not available: see the panel for how to train it.", severity="warning")
            return
        if self.writing:
            return
        brief = self.brief()
        if not brief["title"]:
            self.notify("Give the piece a title first.", severity="warning")
            self.query_one("#writer-title").focus()
            return
        self.writing, self._stop = True, False
        self._report("busy")
        draft = self.query_one("#draft")
        await draft.remove_children()
        view = Markdown("", id="draft-text", open_links=False)
        await draft.mount(view)
        self._write(brief, view)

    def do_stop(self) -> None:
        self._stop = True

    @work(thread=True, exclusive=True, group="writer-generate", exit_on_error=False)
    def _write(self, brief: dict[str, Any], view: Markdown) -> None:
        """The one call into the writer app (see the module docstring)."""
        writer = self.writer
        brief = {k: v for k, v in brief.items() if v is not None}
        error = ""
        try:
            if hasattr(writer, "stream"):
                stream = writer.stream(**brief)  # a bad brief is refused here, before anything is written

                def pieces() -> Any:
                    for piece in stream:
                        if self._stop:  # stop generating now (a stopped draft is not stored)
                            cancel = getattr(stream, "cancel", None)
                            if callable(cancel):
                                cancel()
                            return
                        yield piece

                stream_batched(pieces(), lambda text: self.app.call_from_thread(view.append, text))
            else:
                result = writer.write(**brief)
                self.app.call_from_thread(view.update, str(getattr(result, "text", result)))
        except AppkitError as e:
            error = str(e)
        except RuntimeError:
            return  # the app has gone
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
        try:
            self.app.call_from_thread(self._done, error)
        except RuntimeError:
            pass

    def _done(self, error: str) -> None:
        self.writing = False
        self._report("ready")
        if error:
            self.notify(error, severity="error", timeout=10)

    def close(self) -> None:
        self._stop = True
        closer = getattr(self.writer, "close", None)
        if callable(closer):
            closer()
