"""Widgets of the chat UI: sidebar, message, status bar."""
