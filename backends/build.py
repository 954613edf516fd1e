"""`vnetc build`: render each target for each host, then check, diff or write.

The command line calls :func:`build_plan` and then :func:`output.write` or
:func:`output.diff`; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vnetc.compiler import collector_paused
from vnetc.compiler.ir import Site

from . import Artifact, Gap, target as get_target
from .output import Plan
from .residual import residual_artifacts


@dataclass
class BuildPlan:
    plans: list[Plan] = field(default_factory=list)
    residual: list[tuple[str, Gap]] = field(default_factory=list)   # (target, gap)
    errors: list[tuple[str, Gap]] = field(default_factory=list)
    files: int = 0


def build_plan(site: Site, targets: list[str], out_dir: Path | None, root: Path | None,
               host: str | None = None, options: dict[str, dict] | None = None) -> BuildPlan:
    """Render every target for every host (or just `host`); `options` holds each target's
    keyword options (e.g. {"netplan": {"renderer": "NetworkManager"}})."""
    with collector_paused():
        return _build_plan(site, targets, out_dir, root, host, options)


def _build_plan(site: Site, targets: list[str], out_dir: Path | None, root: Path | None,
                host: str | None, options: dict[str, dict] | None) -> BuildPlan:
    result = BuildPlan()
    hosts = [h for h in site.hosts if host is None or h.name == host]
    for name in targets:
        target = get_target(name)
        plan = Plan(name)
        for h in hosts:
            rendering = target.render(site, h, **(options or {}).get(name, {}))
            result.residual += [(name, g) for g in rendering.residual]
            result.errors += [(name, g) for g in rendering.errors]
            artifacts = list(rendering.files)
            if target.residual_files:
                artifacts += residual_artifacts(target, site, h, rendering.residual, rendering.service)
            by_install_dir: dict[str, list[Artifact]] = {}
            for artifact in artifacts:
                by_install_dir.setdefault(artifact.install_dir, []).append(artifact)
            for install_dir, group in by_install_dir.items():
                if root is not None:
                    directory = root / install_dir
                    if h.name is not None and len(hosts) > 1:
                        directory = root / h.name / install_dir
                else:
                    directory = (out_dir or Path("out")) / name
                    if h.name is not None:
                        directory = directory / h.name
                plan.dirs.setdefault(directory, []).extend(group)
            result.files += len(artifacts)
        result.plans.append(plan)
    return result


def secrets_of(site: Site) -> list[str]:
    """Every secret value in the site, to mask in diffs."""
    found = []
    for _, device in site.devices():
        if device.kind != "macsec":
            continue
        sas = list(device.get("tx-sa")) + [sa for ch in device.get("rx-channel") for sa in ch.sa]
        found += [sa.key for sa in sas if sa.key]
        if device.get("mka-cak"):
            found.append(device.get("mka-cak"))
    return found
