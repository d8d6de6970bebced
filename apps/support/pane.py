"""The support app's pane: the conversation list and the chat with the bot.

The model loads in a worker thread while the screen is already usable (the list shows, the
prompt takes text). A reply is generated in another worker thread that iterates
``bot.stream(...)`` (which stores the customer's message and the reply as it goes) and hands
batched text to the UI with ``call_from_thread``; Esc cancels it and the partial reply is stored
as "stopped". Everything shown comes back from the database once a turn ends, so the screen
shows what was stored (flags, handoff notices), not what the UI guessed.

A person can also answer the open conversation as a human agent (ctrl+y, ``agent_reply`` in
``[tui.bindings]``): the prompt switches to "answer as agent", and Enter stores the text with
``Store.agent_reply`` (author "agent", as ``appkit conversations reply --as agent`` does) instead of
sending it to the bot; ``appkit support retrain`` learns from these answers.

The conversation list and what a person does to stored conversations and replies (rename,
archive, delete, export, rate) are in pane_conversations.py, a mixin of this pane; how stored
messages are shown (a person's answer marked as theirs) in pane_messages.py.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from appkit.errors import AppkitError
from appkit.tui.apps_panels import MissingPanel, Opened, Opener, open_app
from appkit.tui.bindings import BY_ID, SUPPORT, bindings, display
from appkit.tui.streaming import stream_batched
from appkit.tui.widgets.message import MessageView
from appkit.tui.widgets.sidebar import ConversationList, Sidebar
from appkit.tui.widgets.status import StatusChanged, StatusInfo
from apps.support.app import TRAIN_COMMAND
from apps.support.pane_conversations import ConversationActions
from apps.support.pane_messages import AGENT, CLOSED, REGENERATED, generation_params, message_view, visible

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.binding import BindingType

    from appkit.config import Settings
    from appkit.store import ConversationRecord, Store

APP = "support"
DEMO_NOTE = "or `appkit support demo` to train on the sample history shipped with appkit (a few minutes on a CPU)."
class SupportPane(ConversationActions, Horizontal):
    """Sidebar + chat for the support bot."""

    DEFAULT_CSS = """
    SupportPane {
        height: 1fr;
    }
    #chat {
        width: 1fr;
    }
    #chat-title {
        height: 1;
        padding: 0 1;
        background: $boost;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    #messages {
        height: 1fr;
        padding: 0 1 0 0;
    }
    #welcome {
        padding: 1 2;
        color: $text-muted;
    }
    #prompt {
        height: 3;
    }
    #prompt.-agent {
        border: tall $warning;
        border-title-color: $text-warning;
        border-title-style: bold;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings(SUPPORT)

    app_name = APP

    def __init__(self, *, settings: Settings, model: str | None = None, conversation: int | None = None,
                 opener: Opener | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.model = model
        self.initial_conversation = conversation
        self.opener = opener
        self.store: Store | None = None
        self.opened: Opened | None = None
        self.info: dict[str, Any] = {}
        self.params: Any = None
        self.conversation: ConversationRecord | None = None
        self.status = StatusInfo(APP)
        self.generating = False
        self._turn: Any = None
        self._stop_requested = False
        self._pending: tuple[str, MessageView] | None = None
        self._tokens_per_second: float | None = None
        self._turn_stored = threading.Event()  # set by the generating thread once the turn is stored
        self._closing = False
        self.answering = False  # the prompt takes a human agent's answer, not the customer's message

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Sidebar(id="sidebar")
        with Vertical(id="chat"):
            yield Static(id="chat-title")
            yield VerticalScroll(id="messages")
            yield Input(placeholder="Type the customer's message and press Enter (the model is loading)", id="prompt")

    def on_mount(self) -> None:
        self._show_title()
        self.query_one("#messages").mount(self._welcome())
        # After the first frame: the loader's imports (sqlalchemy, torch) hold the GIL for
        # seconds, and the screen should be up before they start.
        self.call_after_refresh(self.load)

    @property
    def bot(self) -> Any:
        return self.opened.app if self.opened is not None and self.opened.ok else None

    def activate(self) -> None:
        """Called when the tab is shown; support loads at start, so there is nothing to do."""

    def focus_default(self) -> None:
        """The prompt, or the list when there is nothing to type into."""
        prompt = self.query_one("#prompt", Input)
        (prompt if not prompt.disabled else self.query_one(ConversationList)).focus()

    # -- loading -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="support-load", exit_on_error=False)
    def load(self) -> None:
        """Open the database, then the model (seconds: torch, weights); never blocks the screen."""
        from appkit.store import open_store

        try:
            store = open_store(self.settings)
        except AppkitError as e:
            self._post(self._store_failed, str(e))
            return
        self._post(self._store_ready, store)
        opened = open_app(APP, settings=self.settings, model=self.model, opener=self.opener)
        info: dict[str, Any] = {}
        params = None
        if opened.ok:
            try:
                info = opened.app.describe()
                params = generation_params(self.settings)
            except AppkitError as e:
                opened = Opened(APP, problem="failed", detail=str(e))
        self._post(self._app_ready, opened, info, params)

    def _post(self, callback: Any, *args: Any) -> None:
        """call_from_thread, quiet when the app has already gone (quit during a load or a reply)."""
        try:
            self.app.call_from_thread(callback, *args)
        except RuntimeError:
            pass

    async def _store_failed(self, error: str) -> None:
        self.opened = Opened(APP, problem="failed", detail=error)
        self._set_status(state="failed")
        self._update_prompt()
        await self._show_empty()

    async def _store_ready(self, store: Store) -> None:
        self.store = store
        self.reload_list()
        if self.initial_conversation is not None:
            await self.open_conversation(self.initial_conversation)

    async def _app_ready(self, opened: Opened, info: dict[str, Any], params: Any) -> None:
        self.opened, self.info, self.params = opened, info, params
        if not opened.ok:
            self._set_status(state=opened.problem)
            if self.conversation is None:
                await self._show_empty()
            else:
                self.notify(f"No {APP} model: {TRAIN_COMMAND}", severity="warning", timeout=10)
            self._update_prompt()
            return
        self._set_status(state="ready")
        if self.conversation is None:
            await self._show_empty()
        self._update_prompt()
        if self._pending is not None:
            text, view = self._pending
            self._pending = None
            await self._send(text, view)

    @on(Button.Pressed, "#retry")
    def _retry(self) -> None:
        self.opened = None
        self._set_status(state="loading")
        self._update_prompt()
        self.load()

    # -- status and title --------------------------------------------------------------------

    def _set_status(self, *, state: str) -> None:
        info = self.info
        self.status = StatusInfo(
            APP, state=state, model=str(getattr(self.bot, "model_name", "") or info.get("name") or ""),
            parameters=info.get("parameters"), device=str(info.get("device") or ""),
            tokens_per_second=self._tokens_per_second, safety=str(info.get("safety") or ""),
        )
        self.post_message(StatusChanged(self.status))

    def _show_title(self) -> None:
        conv = self.conversation
        if conv is None:
            text = Content.styled("new conversation", "bold")
        else:
            text = Content.styled(conv.title or f"untitled #{conv.id}", "bold") + Content.styled(
                f"  #{conv.id} · ", "$text-muted")
            style = "bold $text-warning" if conv.status == "escalated" else "$text-muted"
            text += Content.styled(("⚠ escalated to a human" if conv.status == "escalated" else conv.status), style)
        self.query_one("#chat-title", Static).update(text)

    def _update_prompt(self) -> None:
        prompt = self.query_one("#prompt", Input)
        conv = self.conversation
        if conv is None or conv.status in CLOSED:
            self.answering = False
        prompt.set_class(self.answering, "-agent")
        prompt.border_title = "Answer as agent" if self.answering else None
        prompt.border_subtitle = f"{self._agent_key()} or esc: back to the customer" if self.answering else None
        if conv is not None and conv.status in CLOSED:
            prompt.disabled, prompt.placeholder = True, f"This conversation is {conv.status}: ctrl+o restores it."
        elif self.answering:  # needs no model: the answer is stored, not generated
            prompt.disabled = False
            prompt.placeholder = "Answer as agent … Enter stores it; no bot reply"
        elif self.opened is not None and not self.opened.ok:
            prompt.disabled, prompt.placeholder = True, "No model yet: see above for how to train one."
        else:
            prompt.disabled = False
            prompt.placeholder = ("Type the customer's message and press Enter" if self.bot is not None
                                  else "Type the customer's message (it is sent once the model has loaded)")
        if prompt.disabled and self.app.focused is None and self._shown():  # focus never stays on nothing
            # (Focus in a hidden tab would bring that tab back: only the shown pane takes it.)
            self.query_one(ConversationList).focus()

    def _shown(self) -> bool:
        """Whether this pane is on screen: not inside a hidden tab."""
        return all(node.display for node in self.ancestors_with_self if isinstance(node, Widget))

    def _agent_key(self) -> str:
        """The agent key as the user has it (appkit.toml [tui.bindings] may change it)."""
        keymap = getattr(self.app, "bindings_map", {})
        return display(keymap.get("agent_reply", BY_ID["agent_reply"].key))

    def _welcome(self) -> Static:
        return Static(Content.assemble(
            ("New conversation", "bold"), "\n\n",
            "Type a customer's message below and press Enter: the reply streams in as the model writes it. ",
            "Esc stops it. Up selects a message to copy (c) or rate (+ / -). F1 lists every key.",
        ), id="welcome")

    async def _show_empty(self) -> None:
        """The messages area of a new conversation: a welcome, or what to train when there is no model."""
        messages = self.query_one("#messages")
        await messages.remove_children()
        if self.opened is not None and not self.opened.ok:
            await messages.mount(MissingPanel(self.opened, note=DEMO_NOTE))
        else:
            await messages.mount(self._welcome())

    # -- the list (its content and the actions on it: pane_conversations.py) -----------------

    @on(Sidebar.Search)
    def _search(self) -> None:
        self.reload_list()

    @on(ConversationList.OptionSelected)
    async def _selected(self, event: ConversationList.OptionSelected) -> None:
        if event.option.id:
            await self.open_conversation(int(event.option.id))
            self.query_one("#prompt").focus()

    async def open_conversation(self, conversation_id: int) -> None:
        """Show a stored conversation (stopping a reply in progress: its partial text is kept)."""
        if self.store is None:
            return
        self._cancel_turn()
        try:
            conv = self.store.get_conversation(conversation_id)
            records = self.store.messages(conversation_id)
            ratings = {f.message_id: f.rating for f in self.store.feedback_for(conversation_id)}
        except AppkitError as e:
            self.notify(str(e), severity="error")
            return
        if conv.app != APP:
            self.notify(f"Conversation {conv.id} belongs to the {conv.app} app, not {APP}.", severity="warning")
        self.conversation = conv
        self.answering = False
        messages = self.query_one("#messages")
        with self.app.batch_update():
            await messages.remove_children()
            await messages.mount_all([message_view(m, ratings.get(m.id)) for m in records if visible(m)])
        messages.scroll_end(animate=False)
        self._show_title()
        self._update_prompt()
        self.reload_list()

    # -- sending -----------------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    async def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.generating:
            self.notify("A reply is still being written: wait, or press Esc to stop it.", severity="warning")
            return
        if self.answering:
            await self._answer_as_agent(text, event.input)
            return
        event.input.clear()
        if self.bot is None:  # still loading: show the message now, send it when the model is ready
            if self._pending is not None:
                self.notify("One message is already waiting for the model.", severity="warning")
                return
            view = MessageView("user", text)
            await self._mount_views(view)
            self._pending = (text, view)
            return
        await self._send(text)

    async def _mount_views(self, *views: MessageView) -> None:
        messages = self.query_one("#messages")
        for stale in messages.query("#welcome, .missing-panel"):
            await stale.remove()
        await messages.mount_all(views)
        messages.scroll_end(animate=False)

    async def _send(self, text: str, user_view: MessageView | None = None) -> None:
        bot = self.bot
        try:
            if self.conversation is None:
                self.conversation = bot.start()
        except AppkitError as e:
            self.notify(str(e), severity="error")
            return
        conv_id = self.conversation.id
        records = self.store.messages(conv_id) if self.store is not None else []
        after = max((m.seq for m in records), default=0)
        reply_view = MessageView("assistant", streaming=True, model=bot.model_name)
        if user_view is None:
            user_view = MessageView("user", text)
            await self._mount_views(user_view, reply_view)
        else:
            await self._mount_views(reply_view)
        self.generating, self._stop_requested = True, False
        self._turn_stored.clear()
        self._set_status(state="busy")
        self._generate(conv_id, text, after, user_view, reply_view)

    @work(thread=True, exclusive=True, group="support-generate", exit_on_error=False)
    def _generate(self, conv_id: int, text: str, after: int, user_view: MessageView, reply_view: MessageView) -> None:
        """Iterate the bot's stream in this thread; the UI gets batched text through call_from_thread."""
        turn = None
        error = ""
        try:
            turn = self.bot.stream(conv_id, text, params=self.params)
            self._turn = turn
            if self._stop_requested:  # Esc came before the turn existed
                turn.cancel()
            stream_batched(turn, lambda chunk: self._post(reply_view.append, chunk))
        except Exception as e:  # shown on the reply; the bot has stored the failure
            error = str(e) if isinstance(e, AppkitError) else f"{type(e).__name__}: {e}"
        finally:
            self._turn_stored.set()  # the turn is in the database: quitting may close it now
        if not self._closing:
            self._post(self._turn_done, conv_id, turn, after, [user_view, reply_view], error)

    async def _turn_done(self, conv_id: int, turn: Any, after: int, views: list[MessageView], error: str) -> None:
        self.generating, self._turn = False, None
        stats = getattr(turn, "stats", None)
        if stats is not None and stats.completion_tokens:
            self._tokens_per_second = stats.tokens_per_second
        self._set_status(state="ready")
        if error:
            self.notify(error, severity="error", timeout=10)
        if self.store is None or self.conversation is None or self.conversation.id != conv_id:
            self.reload_list()
            return  # the user moved to another conversation meanwhile; the turn is stored
        self.conversation = self.store.get_conversation(conv_id)
        await self._sync_tail(after, views, error)
        if turn is not None and turn.escalated:
            self.notify(f"Handed to a human ({turn.reason.replace('_', ' ')}).", severity="warning", timeout=8)
        self._show_title()
        self._update_prompt()
        self.reload_list()

    async def _sync_tail(self, after: int, views: list[MessageView], error: str) -> None:
        """Replace this turn's provisional views with the stored messages (and any extra ones)."""
        stored = [m for m in self.store.messages(self.conversation.id) if m.seq > after and visible(m)]
        pending = [v for v in views if v.is_attached]  # in order: the customer's, then the reply
        extra: list[MessageView] = []
        for record in stored:
            if pending and pending[0].role == record.role:
                await pending.pop(0).finish(record)
            else:  # e.g. the handoff notice the bot added after a low-confidence reply
                extra.append(message_view(record))
        for view in pending:  # nothing stored for it: the reply failed before it could be stored
            await view.finish(None, error=error or "no reply")
        if extra:
            await self._mount_views(*extra)
        self.query_one("#messages").scroll_end(animate=False)

    # -- a human agent's answer --------------------------------------------------------------

    def action_agent_reply(self) -> None:
        """Switch the prompt to answering the open conversation as a human agent (again: back)."""
        if self.answering:
            self._set_answering(False)
            return
        conv = self.conversation
        if conv is None or self.store is None:
            self.notify("Open a conversation first: an agent answers a customer who has written.", severity="warning")
            return
        error = self._reload_conversation(conv.id)  # the CLI or the API may have closed it meanwhile
        if error is not None:
            self.notify(str(error), severity="error")
            return
        conv = self.conversation
        assert conv is not None
        if conv.status in CLOSED:
            self._show_title()
            self._update_prompt()
            self.notify(f"Conversation #{conv.id} is {conv.status}: an agent's answer cannot be added to it.",
                        severity="warning")
            return
        self._set_answering(True)
        self.query_one("#prompt", Input).focus()

    def _reload_conversation(self, conversation_id: int) -> AppkitError | None:
        """Read the open conversation again (the CLI or the API may have changed it meanwhile);
        the error when it cannot be read, the old record kept."""
        assert self.store is not None
        try:
            self.conversation = self.store.get_conversation(conversation_id)
        except AppkitError as e:
            return e
        return None

    def _set_answering(self, on: bool) -> None:
        self.answering = on
        self._update_prompt()

    async def _answer_as_agent(self, text: str, prompt: Input) -> None:
        """Store ``text`` as the agent's answer (the bot writes nothing for it) and show it."""
        conv = self.conversation
        if conv is None or self.store is None:
            self._set_answering(False)
            return
        try:
            record = self.store.agent_reply(conv.id, text, author=AGENT)
        except AppkitError as e:  # e.g. closed from the CLI meanwhile: the text stays in the prompt
            self.notify(f"The answer was not stored: {e}", severity="error", timeout=10)
            self._reload_conversation(conv.id)
            self._show_title()
            self._update_prompt()
            self.reload_list()
            return
        prompt.clear()
        await self._mount_views(message_view(record))
        self._reload_conversation(conv.id)
        self._set_answering(False)
        self._show_title()
        self.reload_list()
        self.notify("Stored as the agent's answer.", timeout=3)

    def _cancel_turn(self) -> None:
        if self.generating:
            self._stop_requested = True
            if self._turn is not None:
                self._turn.cancel()
        if self._pending is not None:
            self._pending = None

    # -- actions (the app routes its key bindings here) ---------------------------------------

    async def do_new_conversation(self) -> None:
        self._cancel_turn()
        self.conversation = None
        self.answering = False
        await self._show_empty()
        self._show_title()
        self._update_prompt()
        self.reload_list()
        self.query_one("#prompt").focus()

    def do_stop(self) -> None:
        if self.generating:
            self._cancel_turn()
            self.notify("Stopped: the partial reply is kept.", timeout=3)
            return
        if self.answering:  # back to the customer's messages
            self._set_answering(False)
            self.query_one("#prompt", Input).focus()
            return
        sidebar = self.query_one(Sidebar)
        if self.query_one("#search", Input).has_focus and sidebar.clear_search():
            return
        prompt = self.query_one("#prompt", Input)
        if not prompt.has_focus:
            prompt.focus()

    async def do_regenerate(self) -> None:
        if self.bot is None or self.store is None or self.conversation is None:
            self.notify("Nothing to regenerate yet.", severity="warning")
            return
        if self.generating:
            self.notify("A reply is still being written: Esc stops it first.", severity="warning")
            return
        records = [m for m in self.store.messages(self.conversation.id) if visible(m)]
        last_user = next((m for m in reversed(records) if m.role == "user"), None)
        if last_user is None:
            self.notify("Nothing to regenerate yet.", severity="warning")
            return
        try:
            for m in records:
                if m.seq >= last_user.seq:
                    self.store.update_message(m.id, status="error", error=REGENERATED)
        except AppkitError as e:
            self.notify(str(e), severity="error")
            return
        for view in list(self.query(MessageView)):
            if view.record is not None and view.record.seq >= last_user.seq:
                await view.remove()
        await self._send(last_user.content)

    @on(ConversationList.Delete)
    def _delete_requested(self, event: ConversationList.Delete) -> None:
        self.do_delete(event.conversation_id)

    @on(MessageView.Rate)
    def _rate(self, event: MessageView.Rate) -> None:
        self.rate(event.view, event.rating)

    # -- moving between the prompt and the messages -------------------------------------------

    def on_key(self, event: Any) -> None:
        focused = self.app.focused
        views = list(self.query(MessageView))
        if not views:
            return
        if event.key == "up" and isinstance(focused, Input) and focused.id == "prompt":
            views[-1].focus()
            views[-1].scroll_visible()
        elif isinstance(focused, MessageView) and event.key in ("up", "down"):
            i = views.index(focused) + (-1 if event.key == "up" else 1)
            if i >= len(views):
                self.query_one("#prompt").focus()
            elif i >= 0:
                views[i].focus()
                views[i].scroll_visible()
        else:
            return
        event.stop()

    async def close(self) -> None:
        """Stop a reply in progress, wait until it is stored (as "stopped"), release model and database."""
        self._closing = True
        if self.generating:
            self._cancel_turn()
            # In a thread: the event loop must stay free to run the worker's last callbacks.
            await asyncio.to_thread(self._turn_stored.wait, 10)
        bot, store = self.bot, self.store
        await asyncio.to_thread(_close_all, bot, store)


def _close_all(*things: Any) -> None:
    for thing in things:
        if thing is not None:
            thing.close()
