"""The panes (support chat, writer, sentiment) and the dialogs of the chat UI."""
