"""Where the files read at run time live: the migrations, `alembic.ini` and the checkout pages.

The repository keeps them at its top level; the wheel ships them inside the package, beside
this module (setup.py's build step copies them there). A leaf: imports nothing of ours.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIRECTORY = Path(__file__).resolve().parent
# What the wheel carries inside the package from the top of the repository.
SHIPPED_FROM_REPOSITORY = ("alembic.ini", "migrations", "checkout_page")


def resource_path(name: str) -> Path:
    """The installed copy of `name` when there is one, else the checkout's (an editable install
    or a run from the source tree, where the package directory sits at the repository's top)."""
    if name not in SHIPPED_FROM_REPOSITORY:
        raise ValueError(f"not a shipped resource: {name!r}")
    installed = PACKAGE_DIRECTORY / name
    return installed if installed.exists() else PACKAGE_DIRECTORY.parent / name
