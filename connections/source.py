"""The code on disk: the files of the worker modules, their fingerprint, and a watcher that notices edits."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.utils import autoreload


def module_files(name: str) -> list[Path]:
    """The source files of the dotted module `name` without importing it: its file, or every .py of a package.

    Only the parent packages are imported (as `find_spec` must), so a syntax error in the module itself
    does not hide its files; a module that cannot be found has none.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, SyntaxError):
        return []
    if spec is None or not spec.has_location or not spec.origin:
        return []
    if spec.submodule_search_locations:
        return sorted({path for folder in spec.submodule_search_locations for path in Path(folder).rglob("*.py")})
    return [Path(spec.origin)]


def worker_files(modules: Iterable[str]) -> list[Path]:
    """The source files of every module in `modules` (WORKER_MODULES), each once, in a stable order."""
    return sorted({path.resolve() for name in modules for path in module_files(name)})


def project_folders(root: Path) -> list[Path]:
    """The folders of the project's own code inside `root`: its apps (INSTALLED_APPS) and the settings' package.

    Not every package of the project: an edit to the tests or the benchmarks changes nothing that runs.
    """
    folders = {Path(app.path).resolve() for app in apps.get_app_configs()}
    settings_module = sys.modules.get(settings.SETTINGS_MODULE)
    if settings_module is not None and settings_module.__file__:
        folders.add(Path(settings_module.__file__).resolve().parent)
    root = root.resolve()
    return sorted(folder for folder in folders if folder.is_relative_to(root) and folder != root)


class CodeWatcher:
    """Tells which watched .py file changed since the last look, by modification time.

    Django's `StatReloader` (what `runserver` uses) lists and stats the files: every module this process
    imported, the project's apps, settings package and top-level scripts, and the worker modules' files. It is asked,
    not run in a thread, so the caller decides when to look (once a second) and what a change means.
    """

    def __init__(self, root: Path, modules: Iterable[str]) -> None:
        self.reloader = autoreload.StatReloader()
        self.reloader.watch_dir(root, "*.py")
        for folder in project_folders(root):
            self.reloader.watch_dir(folder, "**/*.py")
        for name in modules:
            spec_files = module_files(name)
            if len(spec_files) == 1:
                self.reloader.extra_files.add(spec_files[0].resolve())
            elif spec_files:
                self.reloader.watch_dir(spec_files[0].parent, "**/*.py")  # a package: files added later count too
        self._mtimes = self._snapshot()

    def _snapshot(self) -> dict[Path, float]:
        # iter_all_python_module_files() caches on sys.modules; a new module since the last look is seen.
        return dict(self.reloader.snapshot_files())

    def changed(self) -> Path | None:
        """The first known file whose modification time moved since the last call (or creation), else None.

        As in Django's reloader, a file seen for the first time is no change: this process importing a
        module lazily must not restart everything.
        """
        now = self._snapshot()
        before, self._mtimes = self._mtimes, now
        for path, mtime in now.items():
            if path in before and before[path] != mtime:
                return path
        return None


def fingerprint(files: Iterable[Path]) -> str:
    """A short hash of the files' names and contents: equal exactly when the code is the same."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"\0missing")
        digest.update(b"\0")
    return digest.hexdigest()[:16]
