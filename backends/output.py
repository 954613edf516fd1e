"""Writing artifacts to disk: shared by every file target, done once.

- `-o DIR`: every file of a host in one directory (DIR, or DIR/HOST for
  multi-host sites).
- `--root DIR`: every file at its installed path under DIR (image builds).

Each file is written to a temporary sibling and renamed into place, so a
reader sees the old file or the new one, never half of one. Each directory
keeps a manifest (`.vnetc-TARGET.manifest`) of the files vnetc wrote there:
files a previous build wrote and this one does not are removed; files vnetc
did not write are never touched.
"""

from __future__ import annotations

import difflib
import grp
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import Artifact


@dataclass
class Plan:
    """Files per directory, as they will be written."""

    target: str
    dirs: dict[Path, list[Artifact]] = field(default_factory=dict)

    def add(self, directory: Path, artifact: Artifact) -> None:
        self.dirs.setdefault(directory, []).append(artifact)


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def manifest_name(target: str) -> str:
    return f".vnetc-{target}.manifest"


def _read_manifest(directory: Path, target: str) -> list[str]:
    try:
        text = (directory / manifest_name(target)).read_text("utf-8")
    except OSError:
        return []
    return [line for line in text.splitlines() if line and "/" not in line and line not in (".", "..")]


def atomic_write(path: Path, data: str, mode: int) -> None:
    """Write `path` through a temporary sibling and a rename.

    The temporary name is fixed (`.NAME.vnetc-tmp`; one left by a killed build is
    replaced), which is half the cost of mkstemp's random names here. No fsync:
    the rename is what makes a reader, or a build killed at any moment, see the
    old file or the new one; an fsync per file made a 4,000-VLAN build five
    times slower than netplan's generator.
    """
    temp = path.with_name(f".{path.name}.vnetc-tmp")
    try:
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError:
        temp.unlink()
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(handle, mode)  # the umask may have narrowed it
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def write(plan: Plan, install: bool) -> Report:
    report = Report()
    for directory, artifacts in sorted(plan.dirs.items()):
        directory.mkdir(parents=True, exist_ok=True)
        old = set(_read_manifest(directory, plan.target))
        new = sorted(a.name for a in artifacts)
        present = {entry.name for entry in os.scandir(directory)}   # one listing, not a failed open per file
        for artifact in artifacts:
            path = directory / artifact.name
            same = False
            if artifact.name in present:
                try:
                    same = (path.stat().st_mode & 0o7777) == artifact.mode and \
                        path.read_text("utf-8") == artifact.content
                except (OSError, UnicodeDecodeError):
                    pass
            if same:
                report.unchanged.append(path)
            else:
                atomic_write(path, artifact.content, artifact.mode)
                report.written.append(path)
            if install and artifact.group:
                _chown_group(path, artifact.group, report)
        # The manifest is written last: a crash before it leaves the old one,
        # which names a superset-or-equal of what a retry will clean up.
        atomic_write(directory / manifest_name(plan.target), "".join(f"{n}\n" for n in new), 0o644)
        for stale in sorted(old - set(new)):
            path = directory / stale
            if path.is_file() and not path.is_symlink():
                path.unlink()
                report.removed.append(path)
    return report


def _chown_group(path: Path, group: str, report: Report) -> None:
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        report.notes.append(f"{path}: group '{group}' does not exist on this machine; the image build must "
                            f"give the file to group {group} (README: Secrets in image builds)")
        return
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        report.notes.append(f"{path}: cannot give it to group '{group}' (not root); the image build must")


def diff(plan: Plan, secrets: list[str]) -> list[str]:
    """`build --check`: a unified diff of what would change (secret values masked)."""
    lines: list[str] = []
    for directory, artifacts in sorted(plan.dirs.items()):
        wanted = {a.name: a for a in artifacts}
        old = set(_read_manifest(directory, plan.target))
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
