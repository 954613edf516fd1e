"""team devices: teamd creates the device from a JSON config and enslaves its ports.

The config is what the language says (runner, link watch, ports) with the
`config` property's JSON merged over it. `teamd -d` daemonizes; `teamd -k`
stops it, which removes the device.
"""

from __future__ import annotations

import json

from vnetc.compiler.ir import Device

from . import tools
from ..teamd import team_config
from .ops import Op, phase


def config(planner, device: Device) -> str:
    ports = [d.name for d in planner.host.devices if d.master == device.ref]
    return json.dumps(team_config(device, {"device": device.name, "ports": {p: {} for p in ports}}), sort_keys=True)


def create_ops(planner, device: Device, step) -> list[Op]:
    kns = planner.k(device.netns)
    if planner.o.tools["teamd"] is None:
        planner.plan.errors.append(f"{planner.subject(device)}: {tools.missing('teamd')}")
        return []
    text = config(planner, device)
    step.details.append(f"teamd config {text}")
    teamd = planner.o.tools["teamd"]
    return [Op(kns, f"start teamd for {device.name}", phase("create"),
               run=lambda ctx: tools.run(kns, [teamd, "-d", "-t", device.name, "-c", text]),
               undo=Op(kns, f"stop teamd of {device.name}", phase("create"),
                       run=lambda ctx: tools.run(kns, [teamd, "-k", "-t", device.name])))]
