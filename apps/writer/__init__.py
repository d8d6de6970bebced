"""The content writer: learns a brand's voice from its articles, drafts from a brief."""

from __future__ import annotations

from apps.writer.app import APP, WriterApp

__all__ = ["APP", "WriterApp"]
