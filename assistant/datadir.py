"""The data directory's file modes: everything it holds is readable by its owner only."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def restrict_file_modes(folder: Path) -> None:
    """Data files readable by their owner only: new ones (0600, folders 0700) and those already there."""
    os.umask(0o077)
    if not folder.is_dir():
        return
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            _chmod(Path(root) / name, 0o700)
        for name in files:
            _chmod(Path(root) / name, 0o600)
    _chmod(folder, 0o700)


def _chmod(path: Path, mode: int) -> None:
    try:
        if not path.is_symlink():
            path.chmod(mode)
    except OSError as exc:  # a file of another owner: leave it, say so
        log.warning("cannot restrict permissions of %s: %s", path, exc)
