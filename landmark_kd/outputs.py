"""Output folders a run writes to: probed before the work, locked while it runs, written atomically.

A kill, a full disk or a second run on the same folder must never leave a half-written checkpoint or score
behind: every file goes to a per-process temporary name first and is renamed into place.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from typing import Any, Callable, Iterable, Iterator

from .errors import OutputError


def prepare_output_dir(path: str) -> str:
    """Create `path` and prove it is writable by writing a probe file, before any long work starts, so a run
    never finishes only to fail on saving. (`os.access` is not enough: root passes it on read-only mounts.)"""
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{path}: is a file, not an output folder")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_probe"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OutputError(f"{path}: output directory is not writable ({reason})") from None
    return path


def refuse_input_folder(out_dir: str, input_folders: Iterable[str], recursive: bool = False, flag: str = "--out",
                        containing: bool = False) -> None:
    """OutputError when `out_dir` is one of `input_folders` (or, with `recursive`, lies inside one): outputs
    written there replace input files (a predicted `.pts` over the label beside its image, a pseudo-labelled copy
    over its own source) or are read back as inputs by the next run. With `containing`, an `out_dir` that holds an
    input folder is refused too: the inputs would be listed among the outputs (and emptying it deletes them)."""
    out = os.path.realpath(out_dir)
    for folder in sorted({os.path.realpath(f) for f in input_folders}):
        if out == folder or (recursive and out.startswith(folder.rstrip(os.sep) + os.sep)):
            where = "is" if out == folder else "lies inside"
            raise OutputError(f"{flag} {out_dir} {where} the input folder {folder}: its outputs would replace or "
                              "mix with the inputs; choose another folder")
        if containing and folder.startswith(out.rstrip(os.sep) + os.sep):
            raise OutputError(f"{flag} {out_dir} contains the input folder {folder}: the inputs would mix with the "
                              "outputs; choose a folder outside it")


def _lock_holder(path: str) -> int:
    """The process id a run lock file holds, 0 when it cannot be read."""
    try:
        with open(path) as handle:
            return int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _refuse(path: str, pid: int, flag: str = "--output"):
    return OutputError(f"{path}: another run (process {pid}) is writing here; wait for it or choose another {flag}")


@contextlib.contextmanager
def output_lock(path: str, flag: str = "--output") -> Iterator[None]:
    """Hold `path/.lock` (holding our pid) while a run writes there: a second run on the same folder is refused
    with one line instead of both writing the same checkpoints. The lock is an flock on the file where the OS has
    one: the kernel drops it when its process dies, however it dies, so a killed run's lock never blocks the
    folder (a pid alone did, for good, once the machine restarted and gave that pid to another process)."""
    try:
        import fcntl
    except ImportError:  # Windows: the pid file alone
        with _pid_lock(path, flag):
            yield
        return
    lock = os.path.join(path, ".lock")
    for _ in range(10):
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _refuse(path, _lock_holder(lock), flag) from None
        except OSError:  # a file system without flock (some network mounts): the pid file alone
            os.close(fd)
            with _pid_lock(path, flag):
                yield
            return
        try:  # the holder before us may have removed the file between our open and our flock: lock the new one
            current = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    else:
        raise OutputError(f"{path}: cannot take the run lock {lock}")
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock)
        os.close(fd)


@contextlib.contextmanager
def _pid_lock(path: str, flag: str = "--output") -> Iterator[None]:
    """`output_lock` without flock: the file holds our pid, and a lock whose process is gone is taken over."""
    lock = os.path.join(path, ".lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            pid = _lock_holder(lock)
            alive = pid > 0 and pid != os.getpid()
            if alive:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    alive = False
                except PermissionError:
                    pass
            if alive:
                raise _refuse(path, pid, flag) from None
            os.remove(lock)  # stale: its process is gone
    else:
        raise OutputError(f"{path}: cannot take the run lock {lock}")
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock)


def atomic_write(path: str, write: Callable[[str], None], suffix: str = ".tmp") -> None:
    """Call `write(temporary_path)`, then rename it to `path`. The temporary name is unique per process (two
    writers never share one), and on any failure it is removed and the previous `path` is left as it was.
    `suffix` keeps an extension that the writer insists on (`.keras`, `.weights.h5`)."""
    tmp = f"{path}.{os.getpid()}.tmp{suffix}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:  # a full disk, or an interrupt mid-write
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise OutputError(f"{path}: cannot write it ({err.strerror or err}); the previous file is kept") from None
        raise


def remove_dead_temporaries(folder: str, names: Iterable[str] | None) -> list[str]:
    """Remove the temporary files `atomic_write` left in `folder` for the files `names` (None: any) when its
    process was killed mid-write (SIGKILL, or a SIGTERM outside `cli.run`, runs no cleanup), each as large as the
    checkpoint it was, and never read again. Only for a folder this process holds locked: any other writer's
    temporary is then a dead one's. Returns the names removed."""
    import re

    removed = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        found = re.fullmatch(r"(.+)\.(\d+)\.tmp(\..+)?", name)
        path = os.path.join(folder, name)
        if (found and int(found.group(2)) != os.getpid() and (names is None or found.group(1) in names)
                and os.path.isfile(path) and not os.path.islink(path)):
            os.remove(path)
            removed.append(name)
    return removed


def atomic_copy(source: str, path: str, suffix: str = ".tmp") -> None:
    """Copy the file `source` to `path` through a temporary file (see atomic_write)."""
    atomic_write(path, lambda tmp: shutil.copyfile(source, tmp), suffix)


def atomic_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file (see atomic_write)."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    atomic_write(path, write)


def json_safe(data: Any) -> Any:
    """`data` with every NaN or infinite float replaced by None: Python's json writes them as the bare tokens NaN
    and Infinity, which are not JSON, and strict readers (browsers, jq, other languages) refuse the whole file."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    return data


def atomic_json(path: str, data: Any) -> None:
    """Write `data` as JSON to `path` through a temporary file (see atomic_write); NaN and infinity as null."""
    atomic_bytes(path, json.dumps(json_safe(data), indent=2, allow_nan=False).encode())


def read_json(path: str) -> Any:
    """A JSON file's content, or None when it is missing or unreadable: for records (a run's config.json, an
    export's report.json) whose absence only means there is nothing to compare with."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
