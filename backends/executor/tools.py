"""Programs some kinds need besides netlink (teamd, ethtool, ip for XDP), run in a namespace."""

from __future__ import annotations

from . import netlink as nl

#: tool -> (Debian package, what vnetc uses it for)
TOOLS = {
    "teamd": ("libteam-utils", "team devices are created and run by teamd"),
    "ethtool": ("ethtool", "netdevsim hw-tc-offload is an ethtool feature"),
    "ip": ("iproute2", "netdevsim xdp-offload loads a BPF object with `ip link set … xdpoffload`"),
}


def find(tool: str) -> str | None:
    import shutil
    return shutil.which(tool, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


class Found(dict):
    """Tool -> its path (None: not installed), looked up when a plan first needs the tool (most
    need none); `offline` (plan --against-empty) asks the machine nothing and takes every tool
    as installed."""

    def __init__(self, offline: bool = False):
        super().__init__()
        self.offline = offline

    def __missing__(self, tool: str) -> str | None:
        path = self[tool] = tool if self.offline else find(tool)
        return path


def run(netns: str | None, argv: list[str]) -> None:
    """Run a tool inside the namespace; a failure is a KernelError carrying its message."""
    import subprocess

    def call() -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)
    try:
        proc = nl.in_netns(netns, call)
    except (OSError, subprocess.SubprocessError) as exc:
        raise nl.KernelError(1, f"{argv[0]}: {exc}") from None
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).strip().splitlines()
        raise nl.KernelError(1, f"`{' '.join(argv[:3])} …` exited {proc.returncode}: {text[-1] if text else ''}")


def missing(tool: str) -> str:
    package, why = TOOLS[tool]
    return f"`{tool}` is not installed (Debian package {package}); {why}"
