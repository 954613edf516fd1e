"""Compiled sites kept between runs of `vnetc plan`, `apply` and `destroy`.

`vnetc apply` is made to be run again on a file that has not changed (a timer or
a configuration-management run re-asserting the state). Compiling is then the
largest part of the run: of a no-change re-apply of 1,000 bridges and 1,000 veth
pairs (~0.3 s) it is ~90 ms, where reading the compiled site back takes ~20 ms.

An entry is the pickled :class:`Result` of compiling one file, at
DIR/<SHA-256 of the working directory and the path as given>.pickle, after a
header that says what it is valid for:

- vnetc's compiler: the name, size and modification time of each of its modules,
  and the Python version;
- the text of every file the compile read, the file and each file it includes,
  as SHA-256 of the text compiling read (a file changed while it was compiled
  makes the next run miss, never hit).

:func:`compile_file` reads the file and those it includes as compiling would,
and uses the entry only when everything matches; otherwise (no entry, another
fingerprint, an unreadable or damaged entry) it compiles and writes the entry
anew. A file with errors is never kept: its diagnostics always come from a
compile. The MAX_ENTRIES most recently used entries are kept.

An entry holds the site as compiled, MACsec keys included, and a pickle runs code
when it is read: DIR is created mode 0700 and used only when it is a directory
(not a symbolic link) owned by the user and writable by no one else; an entry is
written mode 0600, through a temporary file and a rename. The executor keeps
DIR under its run directory (/run/vnetc/cache: a tmpfs, emptied at boot).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import stat
import sys

from . import CompileError, Result, _compile
from .diagnostics import Source
from .expand import NotUTF8, read_source
from .values import BadValue

#: Bumped when what an entry holds changes shape.
FORMAT = 1
SUFFIX = ".pickle"
#: Entries kept (each site file applied from one working directory is one): writing one more
#: removes the least recently used, so that a machine applying many generated files does not
#: fill /run (memory) with them.
MAX_ENTRIES = 16


def compile_file(path: str, directory: str) -> Result:
    """vnetc.compiler.compile_file(path), from DIRECTORY's entry when it holds this compile."""
    try:
        source = read_source(path)
    except (BadValue, NotUTF8):
        from . import compile_file as compile_uncached
        return compile_uncached(path)            # its error, reported as always
    usable = _usable(directory)
    entry = os.path.join(directory, _entry_name(path)) if usable else None
    if entry is not None:
        result = _load(entry, source)
        if result is not None:
            with contextlib.suppress(OSError):
                os.utime(entry)                  # recently used: the last to be removed
            return result
    result = _compile(source)                    # raises CompileError: nothing is kept
    if entry is not None:
        _store(entry, result)
        _evict(directory)
    return result


def _entry_name(path: str) -> str:
    where = f"{os.getcwd()}\0{path}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(where).hexdigest()[:32] + SUFFIX


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _compiler() -> tuple:
    """What identifies this vnetc's compiler: its modules' names, sizes and times; the Python."""
    here = os.path.dirname(os.path.abspath(__file__))
    modules = []
    with os.scandir(here) as entries:
        for item in entries:
            if item.name.endswith(".py"):
                info = item.stat()
                modules.append((item.name, info.st_size, info.st_mtime_ns))
    return FORMAT, sys.version, tuple(sorted(modules))


def _header(result: Result) -> tuple:
    return _compiler(), tuple((s.path, _digest(s.text)) for s in result.sources)


def _usable(directory: str) -> bool:
    """Whether DIRECTORY may hold entries: create it (0700) if missing; refuse one another user
    owns, one others may write to, or a symbolic link."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _load(entry: str, source: Source) -> Result | None:
    try:
        with open(entry, "rb") as handle:
            compiler, files = pickle.load(handle)
            if compiler != _compiler() or not files or files[0] != (source.path, _digest(source.text)):
                return None
            for path, digest in files[1:]:
                if _digest(read_source(path).text) != digest:
                    return None
            result = pickle.load(handle)
    except (OSError, BadValue, CompileError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, pickle.UnpicklingError):
        return None                               # missing, changed or damaged: compile
    return result if isinstance(result, Result) else None


def _store(entry: str, result: Result) -> None:
    """Write the entry (a temporary sibling, then a rename); a failure only costs the next run a compile.
    The temporary name ends like an entry's, so that one left by a killed run is evicted in time."""
    temporary = f"{entry.removesuffix(SUFFIX)}.{os.getpid()}.tmp{SUFFIX}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as handle:
            pickle.dump(_header(result), handle, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, entry)
    except (OSError, pickle.PicklingError, RecursionError):
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _evict(directory: str) -> None:
    """Remove the least recently used entries beyond MAX_ENTRIES."""
    try:
        with os.scandir(directory) as items:
            entries = [(item.stat(follow_symlinks=False).st_mtime_ns, item.path) for item in items
                       if item.name.endswith(SUFFIX)]
    except OSError:
        return
    for _, path in sorted(entries)[:-MAX_ENTRIES]:
        with contextlib.suppress(OSError):
            os.unlink(path)
