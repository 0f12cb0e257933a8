"""Where built demo models live, and how a build is shared between processes.

Models are built on first use and cached in :func:`perfkit.paths.cache_dir`
(``data/cache/`` of the checkout, gitignored, or ``$PERFKIT_CACHE_DIR``). The file name carries a hash
of the build recipe and the library versions, so a changed recipe or an upgraded
scikit-learn/onnx rebuilds instead of loading a stale artefact. Several servers may
start at once (tests, ``make report``): an exclusive file lock makes one build and
the others wait and load its result; files are written under a temporary name and
renamed into place, so a reader never sees half a file.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from perfkit.paths import cache_dir


def recipe_key(recipe: dict[str, Any]) -> str:
    """A short stable hash of a build recipe (plain JSON-able values)."""
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def cached_file(name: str, build: Callable[[], bytes]) -> tuple[Path, bool]:
    """Return ``(path, built_now)`` for cache entry ``name``, building it once if missing."""
    target = cache_dir() / name
    if target.exists():
        return target, False
    with _locked(target.with_name(target.name + ".lock")):
        if target.exists():  # another process built it while we waited
            return target, False
        data = build()
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return target, True
