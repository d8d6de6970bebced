"""Find the data directories shipped with appkit (prompts/, migrations/, sample data).

In a source checkout or editable install they sit at the top of the repository; an installed
wheel carries them inside the package under ``appkit/_bundled`` (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """The directory ``prompts`` or ``migrations`` as shipped with this installation."""
    bundled = _PACKAGE_DIR / "_bundled" / name
    if bundled.is_dir():
        return bundled
    checkout = _PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"appkit installation is incomplete: no {name}/ directory at {bundled} or {checkout}")
