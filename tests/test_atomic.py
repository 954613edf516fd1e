"""Atomic output (backends/output.py), tested by killing real `vnetc build` processes.

Two versions A and B of a large site (600 VLANs: VLANs whose names, ids and
addresses differ between the two, and a MACsec device with an inline key, whose
.netdev is 0640 and, under --root, group systemd-network) are built over each
other, alternately; each build is SIGKILLed at a random moment: most while it
writes (the test watches the directory and kills when a random number of files
are written, renamed or removed), some at a random time of the whole run. After
every kill:

- `-o`: the output directory is exactly A's or exactly B's (names, bytes, modes,
  the manifest, and the files vnetc did not write);
- `--root`: every file is A's version or B's (never a third content, never
  missing when both have it), the files vnetc did not write are untouched, and
  nothing else is there but vnetc's temporary files `.NAME.vnetc-tmp`;
- and the next build, which starts from what the kill left, succeeds; a last
  complete build leaves exactly the expected output and no temporary file.

The random seed is printed (VNETC_ATOMIC_SEED=N repeats a run).
"""

from __future__ import annotations

import errno
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_vnetc
from vnetc.backends import Artifact, output

KILLS = 20
VLANS = 600

ROOT_DIRS = ("etc/systemd/network", "etc/systemd/system", "etc/vnetc/residual")


def site(version: str) -> str:
    """A (VLANs 1..N, addresses .1, one key) or B (VLANs 2..N+1, addresses .2, another key)."""
    first, last_octet, key = (1, 1, "00112233445566778899aabbccddeeff") if version == "A" else \
        (2, 2, "ffeeddccbbaa99887766554433221100")
    lines = ["interface eth0", "interface eth1", "bond bond0 { mode 802.3ad; ports eth0 eth1 }",
             "macsec sec0 {", "    link eth1", "    send-sci on", "    tx-sa 0 { key-id 01; key " + key + " }", "}"]
    for i in range(first, first + VLANS):
        lines.append(f"vlan v{i} {{ link bond0; id {i}; address 10.{i // 256}.{i % 256}.{last_octet}/24 }}")
    return "\n".join(lines) + "\n"


def snapshot(top: Path) -> dict[str, tuple]:
    """Every entry under `top` (not following symlinks): kind, content or link target, mode, group."""
    found: dict[str, tuple] = {}
    for here, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(here, name)
            info = path.lstat()
            rel = str(path.relative_to(top))
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                found[rel] = ("file", path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_gid)
    return found


def build_command(source: Path, where: list[str]) -> list[str]:
    return [sys.executable, "-m", "vnetc", "build", str(source), "-t", "networkd", *where]


def full_build(source: Path, where: list[str]) -> None:
    run = subprocess.run(build_command(source, where), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr


def killed_build(source: Path, where: list[str], moment) -> str:
    """Start a build and SIGKILL it when `moment()` (polled every 2 ms) returns what it
    saw at that moment (a true value); return it, or "finished" if the build ended first."""
    process = subprocess.Popen(build_command(source, where), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    seen = None
    while process.poll() is None and time.monotonic() < deadline:
        seen = moment()
        if seen:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)     # the build needs the CPU more than the watcher
    process.wait()
    error = process.stderr.read().decode()
    process.stderr.close()
    if not seen:
        assert process.returncode == 0, error
        return "finished"
    return seen


def entries(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


class Clock:
    """Kill at a random moment of the whole run (from the start of the process)."""

    def __init__(self, rng: random.Random, within: float):
        self.at = time.monotonic() + rng.uniform(0, within)

    def __call__(self):
        return time.monotonic() >= self.at and "at a random time"


@pytest.fixture
def sources(tmp_path):
    paths = {}
    for version in "AB":
        paths[version] = tmp_path / f"{version}.vnet"
        paths[version].write_text(site(version))
    return paths


@pytest.fixture
def rng():
    seed = int(os.environ.get("VNETC_ATOMIC_SEED", random.randrange(2**32)))
    print(f"VNETC_ATOMIC_SEED={seed}")
    return random.Random(seed)


def add_foreign(directory: Path) -> None:
    """Files vnetc did not write: a secret-like 0600 file, a symlink, a directory with a file."""
    (directory / "notes.txt").write_text("mine\n")
    (directory / "notes.txt").chmod(0o600)
    (directory / "mine.link").symlink_to("/nonexistent/target")
    (directory / "sub" / "deeper").mkdir(parents=True)
    (directory / "sub" / "deeper" / "kept.network").write_text("[Match]\nName=kept\n")
    (directory / "sub").chmod(0o750)


def test_build_killed_at_random_moments_leaves_old_or_new_output(tmp_path, sources, rng):
    out = tmp_path / "out"
    directory = out / "networkd"
    where = ["-o", str(out)]
    stage = out / f".networkd{output.NEW_SUFFIX}"
    full_build(sources["A"], where)
    add_foreign(directory)
    expected = {"A": snapshot(directory)}
    full_build(sources["B"], where)
    expected["B"] = snapshot(directory)
    assert expected["A"] != expected["B"]
    for name in ("notes.txt", "mine.link", "sub", "sub/deeper/kept.network"):
        assert expected["A"][name] == expected["B"][name], name
    secret = next(n for n in expected["B"] if n.endswith("sec0.netdev"))
    assert expected["B"][secret][2] == 0o640 and expected["A"][secret][1] != expected["B"][secret][1]
    files = len(expected["B"])

    class Writing:
        """While the new directory fills up (when it holds a random number of entries), or while
        the old one, swapped out, is being deleted."""

        def __init__(self, deleting: bool):
            self.count = None if deleting else rng.randint(0, files)
            self.inode = directory.stat().st_ino

        def __call__(self):
            if self.count is not None:
                return len(entries(stage)) >= self.count and f"with {self.count} files in the new directory"
            swapped = directory.stat().st_ino != self.inode
            return swapped and os.path.lexists(stage) and "deleting the old directory"

    state, outcomes = "A", []
    for kill in range(KILLS):
        goal = "B" if state == "A" else "A"
        moment = Clock(rng, 1.5) if kill % 5 == 4 else Writing(deleting=kill % 5 == 3)
        when = killed_build(sources[goal], where, moment)
        now = snapshot(directory)
        assert now in (expected["A"], expected["B"]), \
            f"kill {kill} ({when}): neither the old nor the new output: " + \
            _difference(now, expected[state], expected[goal])
        state = "A" if now == expected["A"] else "B"
        outcomes.append(("finished" if when == "finished" else "killed", "new" if state == goal else "old"))
        assert set(os.listdir(out)) <= {"networkd", stage.name}
    print("outcomes:", {o: outcomes.count(o) for o in sorted(set(outcomes))})
    assert outcomes.count(("killed", "old")) and outcomes.count(("killed", "new")), outcomes
    full_build(sources["B"], where)
    assert snapshot(directory) == expected["B"]
    assert os.listdir(out) == ["networkd"], "a temporary directory was left behind"


def test_root_build_killed_at_random_moments_leaves_each_file_old_or_new(tmp_path, sources, rng):
    root = tmp_path / "root"
    where = ["--root", str(root)]
    full_build(sources["A"], where)
    foreign = {root / "etc/systemd/network/50-mine.network": "[Match]\nName=mine\n",
               root / "etc/systemd/network/10-vnetc-handmade.netdev": "[NetDev]\nName=x\nKind=dummy\n",
               root / "etc/systemd/system/other.service": "[Service]\nExecStart=/bin/true\n"}
    for path, text in foreign.items():
        path.write_text(text)
    expected = {"A": snapshot(root)}
    full_build(sources["B"], where)
    expected["B"] = snapshot(root)
    for path in foreign:
        rel = str(path.relative_to(root))
        assert expected["A"][rel] == expected["B"][rel]
    secret = next(n for n in expected["B"] if n.endswith("sec0.netdev"))
    group = _group("systemd-network")
    if group is not None:
        assert expected["B"][secret][2:] == (0o640, group)
    network = root / "etc/systemd/network"

    class Writing:
        """(2) when a random number of the temporary files are written, (3) when a random number
        of them are renamed, or (4) when none is left (stale files being removed)."""

        def __init__(self, todo: int):
            self.todo = todo            # the files this build writes in etc/systemd/network
            self.phase = rng.choice(["writing", "renaming", "removing"])
            self.fraction = rng.random()
            self.peak = 0

        def __call__(self):
            temps = sum(1 for n in entries(network) if n.endswith(output.TMP_SUFFIX))
            self.peak = max(self.peak, temps)
            if self.phase == "writing":
                return temps >= self.fraction * self.todo and f"with {temps} of {self.todo} temporary files written"
            written = self.peak >= 0.8 * self.todo        # (polls may miss the exact peak)
            if self.phase == "renaming":
                return written and temps <= (1 - self.fraction) * self.peak and \
                    f"with about {self.peak - temps} of {self.todo} temporary files renamed"
            return written and temps == 0 and "removing stale files"

    outcomes = []
    now = snapshot(root)
    for kill in range(KILLS):
        todo = {v: sum(1 for k, e in expected[v].items() if k.startswith("etc/systemd/network/") and
                       now.get(k) != e and not k.endswith(".manifest")) for v in "AB"}
        goal = rng.choice([v for v in "AB" if todo[v]])   # each build starts from what the last kill left
        moment = Clock(rng, 1.5) if kill % 5 == 4 else Writing(todo[goal])
        when = killed_build(sources[goal], where, moment)
        now = snapshot(root)
        problems = _root_problems(now, expected["A"], expected["B"])
        assert not problems, f"kill {kill} ({when}): " + "; ".join(problems[:10])
        files = {k: v for k, v in now.items() if not k.endswith((output.TMP_SUFFIX, ".manifest"))}
        result = next((f"{v}'s files" for v in "AB" if files == {k: v for k, v in expected[v].items()
                                                                  if not k.endswith(".manifest")}),
                      "A's and B's files")
        outcomes.append((when, result))
    print("outcomes:", *outcomes, sep="\n  ")
    assert any(result == "A's and B's files" for _, result in outcomes), "no kill while renaming"
    full_build(sources["B"], where)
    assert snapshot(root) == expected["B"], _difference(snapshot(root), expected["A"], expected["B"])


def _root_problems(now: dict, a: dict, b: dict) -> list[str]:
    problems = []
    for rel, entry in now.items():
        name = os.path.basename(rel)
        if name.endswith(output.TMP_SUFFIX):
            real = os.path.join(os.path.dirname(rel), name[1:-len(output.TMP_SUFFIX)])
            if real not in a and real not in b:
                problems.append(f"{rel}: a temporary file of no file vnetc writes")
            continue
        if name.startswith(".vnetc-") and name.endswith(".manifest"):
            listed = set(entry[1].decode().split())
            names = {os.path.basename(k) for k in (*a, *b) if os.path.dirname(k) == os.path.dirname(rel)}
            if not listed <= names:
                problems.append(f"{rel}: lists {sorted(listed - names)[:3]}")
            continue
        if entry not in (a.get(rel), b.get(rel)):
            problems.append(f"{rel}: neither A's nor B's version")
    for rel in set(a) & set(b):
        if rel not in now:
            problems.append(f"{rel}: missing, though both versions have it")
    return problems


def _difference(now: dict, *versions: dict) -> str:
    lines = []
    for version in versions:
        missing = sorted(set(version) - set(now))[:3]
        extra = sorted(set(now) - set(version))[:3]
        other = sorted(k for k in set(now) & set(version) if now[k] != version[k])[:3]
        lines.append(f"missing {missing}, extra {extra}, different {other}")
    return " | ".join(lines)


def _group(name: str) -> int | None:
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


# --- the rules, one by one -------------------------------------------------------------------

def plan(directory: Path, files: dict[str, str], mode: int = 0o644, group: str | None = None) -> output.Plan:
    result = output.Plan("networkd")
    for name, text in files.items():
        result.add(directory, Artifact(name, "etc/systemd/network", text, mode, group))
    return result


@pytest.mark.parametrize("install", [False, True], ids=["-o", "--root"])
def test_a_file_in_the_way_that_vnetc_did_not_write_is_refused_and_nothing_changes(tmp_path, install):
    directory = tmp_path / "d"
    output.write(plan(directory, {"a.network": "a\n", "b.network": "b\n"}), install)
    before = snapshot(tmp_path)
    (directory / "c.network").write_text("someone else's\n")
    with pytest.raises(output.OutputError) as caught:
        output.write(plan(directory, {"a.network": "a2\n", "c.network": "c\n"}), install)
    assert "c.network" in caught.value.format_message() and "did not write" in caught.value.format_message()
    assert snapshot(tmp_path) == {**before, "d/c.network": ("file", b"someone else's\n", 0o644, os.getgid())}


def test_the_refusal_through_the_command_line_is_an_error_not_a_traceback(tmp_path):
    source = tmp_path / "s.vnet"
    source.write_text("tap tap1\n")
    (tmp_path / "out" / "networkd").mkdir(parents=True)
    (tmp_path / "out" / "networkd" / "10-vnetc-tap1.netdev").write_text("mine\n")
    run = run_vnetc("build", str(source), "-t", "networkd", "-o", str(tmp_path / "out"))
    assert run.exit_code == 1
    assert run.stderr.startswith("vnetc: error: ") and "10-vnetc-tap1.netdev" in run.stderr
    assert (tmp_path / "out" / "networkd" / "10-vnetc-tap1.netdev").read_text() == "mine\n"


@pytest.mark.parametrize("install", [False, True], ids=["-o", "--root"])
def test_modes_are_exact_whatever_the_umask(tmp_path, install):
    both = plan(tmp_path / "d", {"p.netdev": "public\n"})
    both.add(tmp_path / "d", Artifact("s.netdev", "etc/systemd/network", "secret\n", 0o600))
    for umask in (0o077, 0o000):
        old = os.umask(umask)
        try:
            output.write(both, install)
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / "d" / "p.netdev").stat().st_mode) == 0o644
        assert stat.S_IMODE((tmp_path / "d" / "s.netdev").stat().st_mode) == 0o600
        both.dirs[tmp_path / "d"][0] = Artifact("p.netdev", "etc/systemd/network", "changed\n", 0o644)


def test_root_gives_a_secret_file_its_group_before_it_appears(tmp_path):
    group = _group("systemd-network")
    if group is None or os.geteuid() != 0:
        pytest.skip("needs root and the group systemd-network (Debian package systemd)")
    report = output.write(plan(tmp_path, {"10-vnetc-sec0.netdev": "Key=…\n"}, 0o640, "systemd-network"), True)
    info = (tmp_path / "10-vnetc-sec0.netdev").stat()
    assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o640, group)
    assert report.notes == []


def test_a_group_missing_on_the_build_machine_is_a_note(tmp_path):
    report = output.write(plan(tmp_path, {"x.netdev": "k\n"}, 0o640, "no-such-group-vnetc"), True)
    assert len(report.notes) == 1 and "no-such-group-vnetc" in report.notes[0]


@pytest.mark.parametrize("install", [False, True], ids=["-o", "--root"])
def test_leftovers_of_a_killed_build_are_removed_and_foreign_lookalikes_kept(tmp_path, install):
    directory = tmp_path / "d"
    output.write(plan(directory, {"a.network": "a\n"}), install)
    leftovers = [directory / f".a.network{output.TMP_SUFFIX}"]
    if not install:
        leftovers.append(tmp_path / f".d{output.NEW_SUFFIX}")
        (tmp_path / f".d{output.NEW_SUFFIX}").mkdir()
        (tmp_path / f".d{output.NEW_SUFFIX}" / "half.network").write_text("half")
    leftovers[0].write_text("half")
    lookalike = directory / f".other.network{output.TMP_SUFFIX}"     # not a name vnetc writes here
    lookalike.write_text("someone's")
    output.write(plan(directory, {"a.network": "a2\n", "b.network": "b\n"}), install)
    assert not any(p.exists() for p in leftovers)
    assert lookalike.read_text() == "someone's"
    assert (directory / "a.network").read_text() == "a2\n"


def test_an_unchanged_directory_is_not_rewritten(tmp_path):
    directory = tmp_path / "d"
    output.write(plan(directory, {"a.network": "a\n", "b.network": "b\n"}), False)
    inode = directory.stat().st_ino
    report = output.write(plan(directory, {"a.network": "a\n", "b.network": "b\n"}), False)
    assert (len(report.written), len(report.unchanged), directory.stat().st_ino) == (0, 2, inode)
    changed = output.write(plan(directory, {"a.network": "a\n", "b.network": "b2\n"}), False)
    assert (len(changed.written), len(changed.unchanged)) == (1, 1)
    assert directory.stat().st_ino != inode     # a new directory, swapped in


def test_an_unchanged_file_keeps_its_inode_and_time_stamps(tmp_path):
    directory = tmp_path / "d"
    output.write(plan(directory, {"a.network": "a\n", "b.network": "b\n"}), False)
    before = (directory / "a.network").stat()
    output.write(plan(directory, {"a.network": "a\n", "b.network": "b2\n"}), False)
    after = (directory / "a.network").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_without_rename_exchange_the_directory_is_updated_file_by_file(tmp_path, monkeypatch):
    """A file system without RENAME_EXCHANGE (NFS, vfat): renameat2 fails with EINVAL there, which
    is what the fault injected here does; the per-file protocol of --root takes over."""
    directory = tmp_path / "d"
    output.write(plan(directory, {"a.network": "a\n", "gone.network": "g\n"}), False)
    (directory / "mine.txt").write_text("mine\n")

    def no_exchange(*args):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(output, "_exchange", no_exchange)
    report = output.write(plan(directory, {"a.network": "a2\n", "b.network": "b\n"}), False)
    assert sorted(os.listdir(directory)) == [".vnetc-networkd.manifest", "a.network", "b.network", "mine.txt"]
    assert (len(report.written), len(report.removed)) == (2, 1)
    assert os.listdir(tmp_path) == ["d"]


def test_a_mount_point_is_updated_file_by_file(tmp_path):
    """-o onto a mount point (here a tmpfs, in a private mount namespace): it cannot be renamed,
    so it is updated in place."""
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    source = tmp_path / "s.vnet"
    source.write_text("tap tap1\ntap tap2\n")
    directory = tmp_path / "out" / "networkd"
    directory.mkdir(parents=True)
    script = (f"mount -t tmpfs tmpfs {directory} && echo mine > {directory}/mine.txt && "
              f"{sys.executable} -m vnetc build {source} -t networkd -o {tmp_path / 'out'} && ls -a {directory}")
    run = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert set(run.stdout.split()) == {".", "..", "mine.txt", ".vnetc-networkd.manifest", "10-vnetc-tap1.netdev",
                                       "10-vnetc-tap1.network", "10-vnetc-tap2.netdev", "10-vnetc-tap2.network"}


@pytest.mark.parametrize("install", [False, True], ids=["-o", "--root"])
def test_a_full_disk_is_a_clean_error_and_leaves_the_old_output(tmp_path, install):
    """ENOSPC on a small tmpfs (in a private mount namespace): exit 1 with a message, and the
    previous output complete."""
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    small, large = tmp_path / "small.vnet", tmp_path / "large.vnet"
    small.write_text("tap tap1\n")
    large.write_text("for i in 1..3000 { tap t${i} { description \"" + "x" * 200 + "\" } }\n")
    disk = tmp_path / "disk"
    disk.mkdir()
    where = f"--root {disk}" if install else f"-o {disk}"
    vnetc = f"{sys.executable} -m vnetc build"
    script = (f"mount -t tmpfs -o size=256k tmpfs {disk} && {vnetc} {small} -t networkd {where} 2>/dev/null && "
              f"{{ {vnetc} {large} -t networkd {where}; echo exit=$?; }} && find {disk} -type f | sort")
    run = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, timeout=300)
    assert "exit=1" in run.stdout, (run.stdout, run.stderr)
    assert "No space left on device" in run.stderr and "Traceback" not in run.stderr, run.stderr
    left = sorted(os.path.basename(p) for p in run.stdout.split("\n")[1:] if p)
    assert left == [".vnetc-networkd.manifest", "10-vnetc-tap1.netdev", "10-vnetc-tap1.network"], left


def test_two_builds_at_once_queue_up(tmp_path, sources):
    """Two builds into one output directory at the same time: both succeed, one after the other
    (an flock), and the result is the complete output of one of them."""
    expected = []
    for version in "AB":
        full_build(sources[version], ["-o", str(tmp_path / version)])
        expected.append(snapshot(tmp_path / version / "networkd"))
    out = tmp_path / "out"
    runs = [subprocess.Popen(build_command(sources[v], ["-o", str(out)]), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for v in "AB"]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read()
        run.stderr.close()
    assert snapshot(out / "networkd") in expected
    assert os.listdir(out) == ["networkd"]
