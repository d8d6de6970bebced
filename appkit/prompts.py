"""Prompt templates: jinja2 files per app, user overrides by name, versioned by content.

Templates live in ``prompts/<app>/<name>.j2`` (shipped with appkit). A file with the same
relative path under the user's directory (APPKIT_HOME/prompts, or ``--prompts DIR``) wins.
Rendering is strict: a variable the caller did not pass is an error naming the template and
the variable, never a silently empty string. Each rendering carries the template's name and a
hash of its source, stored with every reply so a conversation can be audited later.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from appkit.errors import TemplateError
from appkit.resources import shipped_dir


@dataclass(frozen=True)
class Rendered:
    """A rendered template with its provenance."""

    text: str
    name: str
    version: str  # first 12 hex digits of sha256(template source)
    source: str  # "user" or "shipped"


class Prompts:
    """Finds and renders templates; one instance per app process."""

    def __init__(self, user_dirs: list[Path] | None = None) -> None:
        self.user_dirs = [Path(d) for d in (user_dirs or [])]

    @cached_property
    def search_path(self) -> list[Path]:
        return [*self.user_dirs, shipped_dir("prompts")]

    @cached_property
    def _env(self) -> Any:
        import jinja2

        return jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(p) for p in self.search_path]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # prompts are plain text, not HTML
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, **variables: Any) -> Rendered:
        """Render template ``name`` (e.g. ``"support/system.j2"``) with ``variables``.

        Raises:
            TemplateError: no such template, a syntax error, or a variable missing.
        """
        import jinja2

        try:
            template = self._env.get_template(name)
            text = template.render(**variables)
        except jinja2.TemplateNotFound:
            searched = ", ".join(str(p) for p in self.search_path)
            raise TemplateError(f"prompt template {name!r} not found (searched {searched}).") from None
        except jinja2.UndefinedError as e:
            raise TemplateError(f"prompt template {name!r}: {e.message}; pass it when rendering.") from None
        except jinja2.TemplateSyntaxError as e:
            raise TemplateError(f"prompt template {name!r} line {e.lineno}: {e.message}.") from None
        path = Path(template.filename or "")
        source = path.read_bytes() if path.is_file() else text.encode()
        origin = "shipped" if path.is_relative_to(shipped_dir("prompts")) else "user"
        return Rendered(text.strip(), name, hashlib.sha256(source).hexdigest()[:12], origin)


def prompts_for(settings: Any, extra_dir: str | Path | None = None) -> Prompts:
    """The template set for ``settings``: ``extra_dir`` first, then APPKIT_HOME/prompts, then shipped."""
    dirs = [Path(extra_dir)] if extra_dir else []
    if settings is not None and settings.prompts_dir.is_dir():
        dirs.append(settings.prompts_dir)
    return Prompts(dirs)
