"""What every ``appkit NAME eval`` shares: its common flags and how results are shown.

Each app's eval command declares its own data flag and extras (the writer's ``--other``, the
sentiment app's ``--text-col``) and calls ``run_eval``, so every app's evaluation shows a
progress bar, then the same table, then one JSON line (and ``--json FILE``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from appkit.config import Settings

Models = Annotated[Optional[list[str]], typer.Option(
    "--model", help="Model name or directory; repeat to compare (default: the app's active model).")]
JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON here.")]


def run_eval(app: str, *, data: Path, models: list[str] | None, settings: Settings, json_out: Path | None = None,
             **options: Any) -> dict[str, Any]:
    """Evaluate ``models`` of ``app`` on ``data`` with a progress bar; print the table and one JSON line.

    ``options`` left as None are not passed, so each app keeps its own defaults.
    """
    from appkit.apps import get_app
    from appkit.eval import print_table
    from appkit.progress import progress_by_name

    target = get_app(app)
    with progress_by_name() as progress:
        given = {key: value for key, value in options.items() if value is not None}
        result = target.evaluate(data=data, models=list(models or [None]), settings=settings, progress=progress,
                                 **given)
    print_table(result)
    payload = {"eval": app, **result.as_dict()}
    if json_out:
        json_out.write_text(json.dumps(payload, indent=2))
    typer.echo(json.dumps(payload))
    return payload


__all__ = ["JsonOut", "Models", "run_eval"]
