"""Writing artifacts to disk: shared by every file target, done once.

A build either leaves the complete old output or the complete new one, whatever
moment it is killed at; it removes the files a previous build wrote and this
one does not, and never touches a file vnetc did not write. Each directory keeps
a manifest (`.vnetc-TARGET.manifest`) of the files vnetc wrote there; a file
in the way that is not in it is refused, not overwritten.

`-o DIR`: DIR/TARGET[/HOST] is vnetc's own directory. The new one is built
complete as a sibling, `.NAME.vnetc-new`, and swapped in with one
renameat2(RENAME_EXCHANGE), which exchanges two paths atomically: a reader
(or a crash) sees the old directory or the new one, never a mix and never
none. The old one, now under the sibling's name, is then deleted. Files in the
old directory that vnetc did not write are hard-linked into the new one (the
same inodes: content, mode and owner unchanged; directories are re-created
with their mode and owner, their files linked); an unchanged file of vnetc's
is hard-linked as well, so its time stamps stay. Where the swap is impossible
(a mount point, a file system without RENAME_EXCHANGE, a parent directory
vnetc may not write) the directory is written file by file, as below.

`--root DIR`: each installed directory (DIR/etc/systemd/network, …) is shared
with files vnetc did not write, and watched by others, so it is never swapped.
Per directory: (1) the manifest is rewritten to list the old and the new
names (everything this build may leave behind); (2) every new or changed file
is written as `.NAME.vnetc-tmp` (hidden, and without the suffix a consumer
reads); (3) each is renamed over NAME; (4) stale files are removed; (5) the
manifest lists the new names. A crash in (1)–(2) leaves the old files,
complete, and some temporary files; in (3) each file is old or new, some of
each (the renames take ~30 µs a file); in (4) every new file and some stale
ones; in (5) the complete new output. The next build removes the temporary
files and the stale ones (the manifest names them all). A failure to write
(disk full, permissions) happens in (2) and leaves the old files.

No fsync: the guarantees hold against a crash of vnetc, not of the machine
(an fsync per file made a 4,000-VLAN build five times slower). Two builds into
one directory queue up on an flock of the directory (of its parent for -o).
"""

from __future__ import annotations

import difflib
import errno
import fcntl
import grp
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import click

from vnetc.compiler import collector_paused

from . import Artifact

#: What a temporary file or directory is called next to NAME.
TMP_SUFFIX = ".vnetc-tmp"
NEW_SUFFIX = ".vnetc-new"


@dataclass
class Plan:
    """Files per directory, as they will be written."""

    target: str
    dirs: dict[Path, list[Artifact]] = field(default_factory=dict)

    def add(self, directory: Path, artifact: Artifact) -> None:
        self.dirs.setdefault(directory, []).append(artifact)


@dataclass
class Report:
    """What a write did: the paths (as text) it wrote, left as they were and removed; notes."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _paths(directory: Path, names: list[str]) -> list[str]:
    prefix = f"{directory}{os.sep}"
    return [prefix + name for name in names]


class OutputError(click.ClickException):
    """The output cannot be written; nothing of it was (the old output is complete).

    A ClickException, so that the command line prints it as vnetc's other errors
    and exits 1, without a traceback."""

    def show(self, file=None) -> None:
        click.echo(f"vnetc: error: {self.format_message()}", err=True, file=file)


def manifest_name(target: str) -> str:
    return f".vnetc-{target}.manifest"


def write(plan: Plan, install: bool) -> Report:
    """Write `plan`: swap each directory (-o), or update it file by file (install: --root)."""
    with collector_paused():     # (it would rescan the IR and the rendering: 20-30 ms at 4k VLANs)
        return _write(plan, install)


def _write(plan: Plan, install: bool) -> Report:
    report = Report()
    umask = os.umask(0)
    os.umask(umask)
    for directory, artifacts in sorted(plan.dirs.items()):
        files = [_File(a, umask) for a in artifacts]
        try:
            if install:
                _update(directory, files, plan.target, report, chown=True)
            else:
                _swap(directory, files, plan.target, report)
        except OutputError:
            raise
        except OSError as exc:
            where = exc.filename if exc.filename is not None else directory
            raise OutputError(f"cannot write {where}: {exc.strerror or exc}"
                              f"{'' if install else '; the previous output is left as it was'}") from None
    return report


class _File:
    """An artifact as bytes, with the mode it is created with."""

    __slots__ = ("name", "data", "mode", "group", "chmod")

    def __init__(self, artifact: Artifact, umask: int):
        self.name = artifact.name
        self.data = artifact.content.encode("utf-8")
        self.mode = artifact.mode
        self.group = artifact.group
        self.chmod = bool(artifact.mode & umask)   # the umask narrows the mode given to open()


# --- -o: build a sibling, exchange ----------------------------------------------------------

def _swap(directory: Path, files: list[_File], target: str, report: Report) -> None:
    if directory.is_symlink():
        directory = Path(os.path.realpath(directory))
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    stage = parent / f".{directory.name}{NEW_SUFFIX}"
    with _Dir(parent) as parent_fd:
        _lock(parent_fd)
        _remove_tree(parent_fd, stage.name)              # left by a killed build
        try:
            old_fd = os.open(directory.name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW,
                             dir_fd=parent_fd)
        except FileNotFoundError:
            old_fd = None
        try:
            if old_fd is not None and os.fstat(old_fd).st_dev != os.fstat(parent_fd).st_dev:
                _update(directory, files, target, report, chown=False)   # a mount point: cannot be swapped
                return
            old = _State(old_fd, target, files) if old_fd is not None else None
            names = {f.name for f in files}
            if old is not None:
                old.refuse_foreign(directory, names)
                if old.up_to_date(files):
                    report.unchanged += _paths(directory, [f.name for f in files])
                    return
            try:
                os.mkdir(stage.name, 0o700, dir_fd=parent_fd)
            except PermissionError:                      # the directory is writable, its parent not
                _update(directory, files, target, report, chown=False)
                return
            same = old.same if old is not None else {}
            unchanged = [f.name for f in files if f.name in same]
            changed = [f for f in files if f.name not in same]
            written = [f.name for f in changed]
            with _Dir(stage.name, parent_fd) as new_fd:
                for name in unchanged:
                    os.link(name, name, src_dir_fd=old_fd, dst_dir_fd=new_fd, follow_symlinks=False)
                for f in changed:
                    _create(new_fd, f.name, f.data, f.mode, f.chmod)
                removed: list[str] = []
                if old is not None:
                    for name in old.foreign(names):
                        _carry(old_fd, new_fd, name, directory)
                    removed = old.stale(names)
                _create(new_fd, manifest_name(target), _manifest_text(names), 0o644, False)
                os.chmod(new_fd, stat.S_IMODE(os.fstat(old_fd).st_mode) if old_fd is not None else
                         0o777 & ~_current_umask())
            if old_fd is None:
                os.rename(stage.name, directory.name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
                report.written += _paths(directory, written)
                return
            try:
                _exchange(parent_fd, stage.name, directory.name)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                _remove_tree(parent_fd, stage.name)      # this file system cannot swap: file by file
                _update(directory, files, target, report, chown=False)
                return
            _remove_tree(parent_fd, stage.name)          # the old directory
            report.written += _paths(directory, written)
            report.unchanged += _paths(directory, unchanged)
            report.removed += _paths(directory, removed)
        except BaseException:
            try:
                _remove_tree(parent_fd, stage.name)
            except OSError:
                pass
            raise
        finally:
            if old_fd is not None:
                os.close(old_fd)


def _carry(old_fd: int, new_fd: int, name: str, where: Path) -> None:
    """Keep a file vnetc did not write: hard-link it (a directory: re-create it, link its files)."""
    info = os.stat(name, dir_fd=old_fd, follow_symlinks=False)
    try:
        if not stat.S_ISDIR(info.st_mode):
            os.link(name, name, src_dir_fd=old_fd, dst_dir_fd=new_fd, follow_symlinks=False)
            return
        os.mkdir(name, 0o700, dir_fd=new_fd)
        with _Dir(name, old_fd) as src, _Dir(name, new_fd) as dst:
            for entry in os.listdir(src):
                _carry(src, dst, entry, where / name)
            if os.geteuid() == 0:
                os.chown(dst, info.st_uid, info.st_gid)
            os.chmod(dst, stat.S_IMODE(info.st_mode))
    except OSError as exc:
        raise OutputError(f"{where / name} was not written by vnetc and cannot be kept in the new output "
                          f"({exc.strerror}); move it out of {where}") from None


def _exchange(dir_fd: int, a: str, b: str) -> None:
    """renameat2(RENAME_EXCHANGE): swap two names atomically (Linux ≥ 3.15; ext4, xfs, btrfs, tmpfs)."""
    import ctypes   # here, not at start-up: a first build (nothing to swap) never needs it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to load
        libc = None
    if libc is None or not hasattr(libc, "renameat2"):
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if libc.renameat2(dir_fd, os.fsencode(a), dir_fd, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), a)


_RENAME_EXCHANGE = 2


# --- --root: temporary files, renames, stale files, manifest ----------------------------------

def _update(directory: Path, files: list[_File], target: str, report: Report, chown: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    manifest = manifest_name(target)
    with _Dir(directory) as fd:
        _lock(fd)
        state = _State(fd, target, files)
        names = {f.name for f in files}
        for name in state.present & {_tmp(n) for n in state.old | names | {manifest}}:
            os.unlink(name, dir_fd=fd)                       # left by a killed build
        state.refuse_foreign(directory, names)
        gid = {g: _gid(g, directory, report) for g in {f.group for f in files if chown and f.group}}
        changed = [f for f in files if f.name not in state.same]
        stale = state.stale(names)
        if names - state.old:
            _put(fd, manifest, _manifest_text(state.old | names))      # (1) claim the new names first
        try:
            for f in changed:                                           # (2)
                _create(fd, _tmp(f.name), f.data, f.mode, f.chmod)
                if gid.get(f.group) is not None:
                    _give(fd, _tmp(f.name), gid[f.group], directory / f.name, report)
        except BaseException:
            for f in changed:
                _unlink_quietly(fd, _tmp(f.name))
            raise
        for f in changed:                                               # (3)
            os.rename(_tmp(f.name), f.name, src_dir_fd=fd, dst_dir_fd=fd)
        report.written += _paths(directory, [f.name for f in changed])
        for name in stale:                                              # (4)
            os.unlink(name, dir_fd=fd)
        report.removed += _paths(directory, stale)
        if changed or stale or state.manifest_text != _manifest_text(names):
            _put(fd, manifest, _manifest_text(names))                   # (5)
        report.unchanged += _paths(directory, [f.name for f in files if f.name in state.same])
        for f in files:
            if f.name in state.same:
                if gid.get(f.group) is not None and state.same[f.name] != gid[f.group]:
                    _give(fd, f.name, gid[f.group], directory / f.name, report)


def _tmp(name: str) -> str:
    return f".{name}{TMP_SUFFIX}"


def _gid(group: str, directory: Path, report: Report) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        report.notes.append(f"{directory}: group '{group}' does not exist on this machine; the image build must "
                            f"give the files that need it to group {group} (README: Secrets in image builds)")
        return None


def _give(fd: int, name: str, gid: int, path: Path, report: Report) -> None:
    try:
        os.chown(name, -1, gid, dir_fd=fd, follow_symlinks=False)
    except PermissionError:
        report.notes.append(f"{path}: cannot give it to group {gid} (not root); the image build must")


# --- shared ------------------------------------------------------------------------------

class _State:
    """What is in a directory now: vnetc's old names, every name, and which files are already right."""

    def __init__(self, fd: int, target: str, files: list[_File]):
        self.fd = fd
        self.manifest = manifest_name(target)
        self.present = set(os.listdir(fd))
        try:
            self.manifest_text = _read(fd, self.manifest) if self.manifest in self.present else None
        except OSError:
            self.manifest_text = None
        self.old = _parse_manifest(self.manifest_text or b"")
        #: name -> gid of each file whose content and mode are already the new ones
        self.same: dict[str, int] = {}
        for f in files:
            if f.name in self.old and f.name in self.present:
                gid = _same(fd, f.name, f.data, f.mode)
                if gid is not None:
                    self.same[f.name] = gid

    def refuse_foreign(self, directory: Path, names: set[str]) -> None:
        """A file vnetc would write is there, and vnetc did not write it: refuse (change nothing)."""
        foreign = sorted((names & self.present) - self.old)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise OutputError(f"{directory} holds files vnetc did not write (they are not in its "
                              f"{self.manifest}) where it would write: {shown}; move them away, vnetc "
                              f"never overwrites them")

    def stale(self, names: set[str]) -> list[str]:
        """Files vnetc wrote before and does not write now (regular files only; anything else is kept)."""
        found = []
        for name in sorted((self.old & self.present) - names):
            try:
                if stat.S_ISREG(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode):
                    found.append(name)
            except FileNotFoundError:
                pass
        return found

    def foreign(self, names: set[str]) -> list[str]:
        """Entries to keep: neither vnetc's old files, nor its new ones, nor its manifest or temporary files."""
        ours = self.old | names | {self.manifest}
        stale = set(self.stale(names))
        return sorted(n for n in self.present - names - stale - {self.manifest}
                      if not (n.endswith(TMP_SUFFIX) and n[1:-len(TMP_SUFFIX)] in ours))

    def up_to_date(self, files: list[_File]) -> bool:
        names = {f.name for f in files}
        return len(self.same) == len(files) and not self.stale(names) and \
            self.manifest_text == _manifest_text(names) and \
            not any(n.endswith(TMP_SUFFIX) for n in self.present)


def _same(fd: int, name: str, data: bytes, mode: int) -> int | None:
    """The file's gid if it is a regular file with this content and mode, else None."""
    try:
        handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) != mode or info.st_size != len(data):
            return None
        return info.st_gid if os.read(handle, len(data) + 1) == data else None
    finally:
        os.close(handle)


def _create(fd: int, name: str, data: bytes, mode: int, chmod: bool) -> None:
    """A new file (it must not exist), created with its final mode: never readable by more."""
    handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
    try:
        if chmod:
            os.fchmod(handle, mode)
        done = os.write(handle, data)
        if done < len(data):                  # rare (a signal, a full disk on the way): write the rest
            view = memoryview(data)
            while done < len(data):
                done += os.write(handle, view[done:])
    finally:
        os.close(handle)


def _put(fd: int, name: str, data: bytes, mode: int = 0o644) -> None:
    """Replace one file atomically: a temporary sibling, then a rename."""
    temp = _tmp(name)
    _unlink_quietly(fd, temp)
    try:
        _create(fd, temp, data, mode, bool(mode & _current_umask()))
        os.rename(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except BaseException:
        _unlink_quietly(fd, temp)
        raise


def atomic_write(path: Path, text: str, mode: int) -> None:
    """Replace `path` through a temporary sibling and a rename (`vnetc fmt`)."""
    with _Dir(path.parent) as fd:
        _put(fd, path.name, text.encode("utf-8"), mode)


def _read(fd: int, name: str) -> bytes:
    handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    try:
        chunks = []
        while chunk := os.read(handle, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(handle)


def _manifest_text(names: set[str]) -> bytes:
    return "".join(f"{n}\n" for n in sorted(names)).encode("utf-8")


def _parse_manifest(data: bytes) -> set[str]:
    text = data.decode("utf-8", "replace")
    return {line for line in text.splitlines() if line and "/" not in line and line not in (".", "..")}


def _read_manifest(directory: Path, target: str) -> set[str]:
    try:
        return _parse_manifest((directory / manifest_name(target)).read_bytes())
    except OSError:
        return set()


def _unlink_quietly(fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        pass


def _remove_tree(dir_fd: int, name: str) -> None:
    """Delete `name` (a directory tree or a file) inside dir_fd, never following a symlink."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    with _Dir(name, dir_fd) as fd:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                _remove_tree(fd, entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    os.rmdir(name, dir_fd=dir_fd)


def _lock(fd: int) -> None:
    """Queue up behind another vnetc writing here (where the file system has no flock: do not wait)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EBADF, errno.EINVAL):
            raise


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


class _Dir:
    """A directory opened as a file descriptor (for the *at() calls), closed on exit. A name
    inside another (dir_fd) is never a symlink followed; a path given by the user may be."""

    def __init__(self, path: Path | str, dir_fd: int | None = None):
        nofollow = os.O_NOFOLLOW if dir_fd is not None else 0
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | nofollow, dir_fd=dir_fd)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


# --- build --check ---------------------------------------------------------------------------

def diff(plan: Plan, secrets: list[str]) -> list[str]:
    """`build --check`: a unified diff of what would change (secret values masked)."""
    lines: list[str] = []
    for directory, artifacts in sorted(plan.dirs.items()):
        wanted = {a.name: a for a in artifacts}
        old = _read_manifest(directory, plan.target)
        for name in sorted(set(wanted) | old):
            path = directory / name
            try:
                current = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                current = None
            new = wanted[name].content if name in wanted else None
            if current == new:
                continue
            a = _mask(current or "", secrets).splitlines(keepends=True)
            b = _mask(new or "", secrets).splitlines(keepends=True)
            lines.extend(difflib.unified_diff(a, b, f"{path} (on disk)" if current is not None else "/dev/null",
                                              f"{path} (vnetc)" if new is not None else "/dev/null"))
    return lines


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text
