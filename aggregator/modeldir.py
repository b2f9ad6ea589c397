"""Putting a trained model in place, and finding it again after a crash.

``aggregator train`` writes the new artifact beside the old one (``.classifier.tmp-PID``)
and swaps it in with two renames, the old one set aside as ``.classifier.old-PID`` until
the new one is in place. Signals wait for the renames; a hard stop between them (SIGKILL,
the OOM killer, a power cut) cannot, and left no ``classifier/``: every command then
used the shipped model, silently, and the user's model sat in a hidden directory.
:func:`recover` finishes such a swap the next time the model directory is looked at.

Cheap to import (``config`` uses it on every command).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: A dead process's leftover younger than this is not cleared (see clear_leftovers).
LEFTOVER_AGE_S = 600.0


def tmp_dir(out_dir: Path) -> Path:
    """Where this process writes a new artifact for ``out_dir``."""
    return out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"


def check_writable(out_dir: Path) -> None:
    """Raise :class:`~aggregator.errors.ConfigError` unless a model can be written to
    ``out_dir`` (its parent made if missing, a directory created in it and removed):
    checked before fitting, since an unwritable destination (a read-only data
    directory, a file in the way) failed only when the model, minutes of work, was
    written. A file at ``out_dir`` itself (not a link, which is replaced) is not
    replaced: the new model was swapped in and the file, set aside, could not be
    deleted as a directory would be (exit 1 after the whole fit, nothing re-tagged)."""
    try:
        if not out_dir.is_symlink() and out_dir.exists() and not out_dir.is_dir():
            raise ConfigError(f"cannot write the model to {out_dir}: a file is in the way")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.check-", dir=out_dir.parent):
            pass
    except OSError as e:
        raise ConfigError(f"cannot write the model to {out_dir}: {e.strerror or e}") from e


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``tmp`` with two renames; the old artifact survives as
    ``.<name>.old-<pid>`` until the new one is in place. SIGINT and SIGTERM wait for the
    two renames (where they can be held back): a handler that raises between them would
    leave no artifact at ``out_dir``, the user's model set aside and the shipped one in
    use. A hard stop there is mended by :func:`recover`."""
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if _present(old):
        _remove(old)
    _sync(tmp)  # on disk before it is renamed into place: see _complete
    with _signals_held():
        # a link whose target is gone (a model kept on a disk since removed) is set
        # aside too: exists() is False for it, and renaming the new model onto it failed
        # ("Not a directory") after the whole fit
        if _present(out_dir):
            out_dir.rename(old)
        try:
            tmp.rename(out_dir)
        except BaseException:
            if _present(old) and not _present(out_dir):
                old.rename(out_dir)
            raise
    if _present(old):
        _remove(old)


def _sync(artifact: Path) -> None:
    """Flush the files of ``artifact`` and the directory itself to disk. Where the file
    system cannot (EINVAL for a directory on some network and FUSE file systems), the
    model is put in place all the same: :func:`_complete` still guards a recovery. A
    write that failed (EIO, a full disk) fails the swap."""
    for path in [*sorted(artifact.iterdir()), artifact]:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            if e.errno in (errno.EIO, errno.ENOSPC, errno.EDQUOT):
                raise
            log.debug("model: cannot flush %s to disk: %s", path, e)


def _present(path: Path) -> bool:
    """Something is at ``path``: a file, a directory, or a link (one to nothing too)."""
    return path.exists() or path.is_symlink()


def _remove(path: Path) -> None:
    """Delete an artifact set aside: a directory, or a symbolic link to one (a
    ``classifier/`` linked to a model kept elsewhere), whose target is left alone;
    ``shutil.rmtree`` refused the link after the new model was in place, failing
    ``train`` before it re-tagged anything."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)


def recover(out_dir: Path) -> Path | None:
    """When ``out_dir`` holds no artifact and a swap into it was cut short by a process
    that is gone, finish it: the complete new artifact when there is one (its manifest
    is written last), else the old one put back. Returns what was moved into place, or
    None. Leftovers of dead processes that were not needed are deleted; those of a live
    process (a ``train`` under way) are left alone."""
    if (out_dir / MANIFEST).exists() or not out_dir.parent.is_dir():
        return None
    new, old = _leftovers(out_dir)
    if not new and not old:
        return None
    complete = [p for p in new if _complete(p)]
    complete.sort(key=lambda p: (p / MANIFEST).stat().st_mtime_ns)
    previous = [p for p in old if (p / MANIFEST).exists()]
    previous.sort(key=lambda p: (p / MANIFEST).stat().st_mtime_ns)
    chosen: Path | None = (complete or previous)[-1] if complete or previous else None
    moved = None
    if chosen is not None:
        try:
            if out_dir.exists():  # an empty or partial directory left in the way
                shutil.rmtree(out_dir)
            chosen.rename(out_dir)
            moved = out_dir
            what = "the new model" if chosen in complete else "the previous model"
            log.warning("model: a swap cut short by a crash was finished: %s is in place", what)
        except OSError as e:  # another process recovering at the same moment, say
            log.debug("model: could not recover %s: %s", chosen, e)
            return None
    # The rest of the swap just finished goes; another's only once old enough to be a
    # crash's (see clear_leftovers): before the first model, a `train` in another
    # container, writing its model, had it deleted by any command run meanwhile.
    pid = chosen.name.rsplit("-", 1)[1] if moved is not None and chosen is not None else None
    for p in [*new, *old]:
        if p != chosen and (p.name.rsplit("-", 1)[1] == pid or _stale(p)):
            shutil.rmtree(p, ignore_errors=True)
    return moved


def _complete(artifact: Path) -> bool:
    """The new artifact of a swap cut short is all there: its manifest (written last)
    reads, and the files it lists match their checksums. After a power cut a manifest
    may be on disk while the files written before it are not, or only in part: that
    torn model was put in place, and the previous one deleted."""
    from .manifest import file_sha256  # here: modeldir is on every command's start-up path

    try:
        manifest = json.loads((artifact / MANIFEST).read_text(encoding="utf-8"))
        # the numpy scorer beside the pipeline, where the artifact has one
        listed = [manifest["artifact"], *([manifest["scorer"]] if "scorer" in manifest else [])]
        for entry in listed:
            if file_sha256(artifact / str(entry["file"])) != entry["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def clear_leftovers(out_dir: Path) -> None:
    """Delete what swaps into ``out_dir`` by processes that are gone left beside it while
    it holds a model: the new artifact of a ``train`` killed while writing it, the old
    one of a ``train`` killed after its swap. :func:`recover` looks only when
    ``out_dir`` is missing, so each such run kept a whole model's copy for good. Those
    of a live process (a ``train`` under way) are left alone, and so are those touched in
    the last :data:`LEFTOVER_AGE_S`: a ``train`` in another PID namespace (a container
    sharing the data directory) looks dead from here, and writes its model in seconds."""
    if not (out_dir / MANIFEST).exists() or not out_dir.parent.is_dir():
        return  # a swap cut short: recover() chooses from them
    new, old = _leftovers(out_dir)
    for p in [*new, *old]:
        if _stale(p):
            shutil.rmtree(p, ignore_errors=True)


def _stale(leftover: Path) -> bool:
    """Untouched for :data:`LEFTOVER_AGE_S`: no ``train`` is writing it, even one whose
    process this one cannot see."""
    try:
        return time.time() - leftover.stat().st_mtime >= LEFTOVER_AGE_S
    except OSError:
        return False  # gone meanwhile


def _leftovers(out_dir: Path) -> tuple[list[Path], list[Path]]:
    """The new (``.tmp-PID``) and the old (``.old-PID``) artifacts of swaps into
    ``out_dir`` by processes no longer alive."""
    new: list[Path] = []
    old: list[Path] = []
    for p in out_dir.parent.iterdir():
        for prefix, found in ((f".{out_dir.name}.tmp-", new), (f".{out_dir.name}.old-", old)):
            pid = p.name.removeprefix(prefix)
            if pid != p.name and pid.isascii() and pid.isdigit() and not _alive(int(pid)):
                found.append(p)
    return new, old


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:  # no process can have it: not a swap of ours, left alone
        return True
    except OSError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM are delivered after the block, not inside it (POSIX, main
    thread; elsewhere a no-op)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
