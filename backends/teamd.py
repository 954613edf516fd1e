"""The teamd JSON of a team device, for every backend that starts teamd or hands
the config to NetworkManager: the runner and link watch the language names,
with the device's raw `config` JSON merged over them (objects merged key by
key, anything else replaced).
"""

from __future__ import annotations

import json

from vnetc.compiler.ir import Device


def team_config(device: Device, base: dict | None = None) -> dict:
    """teamd's config for DEVICE; `base` (e.g. {"device": …, "ports": …}) goes in before the raw config."""
    config: dict = {**(base or {}), "runner": {"name": device.get("runner")}, "link_watch": {"name": device.get("link-watch")}}
    if device.get("config"):
        _merge(config, json.loads(device.get("config")))
    return config


def _merge(into: dict, over: dict) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
