"""Build step of the wheel: the repository's top-level run-time files go inside the package.

The project's metadata is in pyproject.toml. The repository keeps `alembic.ini`, `migrations/`
and `checkout_page/` at its top; an installed service has no checkout, so the wheel carries
them under `processor/`, where `processor.resources` looks first.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# Keep in step with processor.resources.SHIPPED_FROM_REPOSITORY.
SHIPPED_FROM_REPOSITORY = ("alembic.ini", "migrations", "checkout_page")
ROOT = Path(__file__).resolve().parent


def _shipped_files() -> list[Path]:
    files: list[Path] = []
    for name in SHIPPED_FROM_REPOSITORY:
        path = ROOT / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [
            file.relative_to(ROOT)
            for file in candidates
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc"
        ]
    return files


class BuildWithShippedFiles(build_py):
    """`build_py`, then a copy of the shipped files into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads them from the checkout itself
        for relative in _shipped_files():
            target = Path(self.build_lib, "processor", relative)
            self.mkpath(str(target.parent))
            self.copy_file(str(ROOT / relative), str(target))


setup(cmdclass={"build_py": BuildWithShippedFiles})
