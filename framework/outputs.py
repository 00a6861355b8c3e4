"""Atomic output files: everything a job writes goes to a temporary name and is renamed when
complete, so an interrupted job never leaves a half-written file under a final name."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from muone.errors import InputError

_UMASK = os.umask(0)
os.umask(_UMASK)
#: Mode of output files: what ``open()`` would give (mkstemp alone makes them private).
FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it to ``path`` on success and
    remove it on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | Path, data: bytes) -> None:
    """Atomically write bytes (fsync'd before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: str | Path, text: str) -> None:
    """Atomically write text (UTF-8)."""
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write JSON (indented, keys in insertion order)."""
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def write_pickle(path: str | Path, obj: Any) -> None:
    """Atomically write a pickle (highest protocol)."""
    write_bytes(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Atomically write a file produced by ``writer(tmp_path)`` (e.g. uproot)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing or corrupt file is an InputError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read JSON: {exc}") from None


def read_pickle(path: str | Path) -> Any:
    """Read a pickle written by muone; a missing or corrupt file is an InputError naming it."""
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as exc:  # truncated or foreign pickles raise many types
        raise InputError(f"{path}: cannot read results ({type(exc).__name__}: {exc})") from None


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_histograms_root(path: str | Path, hists: dict[str, Any]) -> None:
    """Write hist objects to a ROOT file with uproot (keys with '/' become directories)."""
    import uproot

    def writer(tmp: Path) -> None:
        with uproot.recreate(tmp) as f:
            for name, h in hists.items():
                f[name] = h

    write_with(path, writer)
