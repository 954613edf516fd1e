"""The NixOS target: `vnetc.nix`, a NixOS module with the networkd configuration as options.

For every example and valid golden case, the module parses (`nix-instantiate
--parse`) and evaluates with stub arguments (`nix-instantiate --eval --strict
--json`, testing.md) to the same sections and keys the networkd target renders
for the same site. Every key it puts in a NixOS option is one nixpkgs' allow-list
for that section has (the rest go to extraConfig, and only those). Nix escaping,
secrets (inline key: exit 3; key-file: KeyFile=) and determinism are pinned too.
Without nix-instantiate these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_vnetc
from harness.netns import skip_or_fail
from test_golden import case_input
from vnetc.backends import TARGETS, nixos
from vnetc.backends.nixos import (ALLOWED, INT_KEYS, NETDEV_LISTS, NETDEV_OPTIONS, NETWORK_KEY_LISTS, NETWORK_LISTS,
                                  NETWORK_OPTIONS, nix_string, nix_value, parse_ini, unit_attrs)
from vnetc.backends.residual import residual_artifacts
from vnetc.compiler import compile_file, compile_source

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "golden"
NIXOS = TARGETS["nixos"]
NETWORKD = TARGETS["networkd"]
REPEATABLE = set(NETDEV_LISTS) | set(NETWORK_LISTS)


def _sources() -> list[tuple[str, Path]]:
    out = [(str(p.relative_to(ROOT)), p) for p in sorted(EXAMPLES.rglob("*.vnet"))]
    for case in sorted(GOLDEN.iterdir()):
        if (case / "nixos.yml").exists():
            out.append((f"golden/{case.name}", case / case_input(case)))
    return out


SOURCES = _sources()


def require_nix() -> None:
    if shutil.which("nix-instantiate") is None:
        skip_or_fail("nix-instantiate is missing (Debian package nix-bin)")


def nix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["nix-instantiate", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def evaluate(path: Path) -> dict:
    run = nix("--eval", "--strict", "--json", "-E",
              f"(import {path}) {{ lib = {{}}; config = {{}}; pkgs = {{}}; }}")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def eval_expr(expr: str):
    run = nix("--eval", "--strict", "--json", "-E", expr)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@functools.cache
def rendered(path: Path):
    """[(host, nixos rendering, networkd rendering)] for each host of the site."""
    site = compile_file(str(path)).site
    return site, [(h, NIXOS.render(site, h), NETWORKD.render(site, h)) for h in site.hosts]


def module_of(rendering) -> str:
    (artifact,) = [a for a in rendering.files if a.name == "vnetc.nix"]
    return artifact.content


# --------------------------------------------------------------------------
# the comparison: eval JSON -> networkd sections


def _ini_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    assert isinstance(value, str), value
    return value


def _pairs(attrs: dict) -> list[tuple[str, str]]:
    out = []
    for key, value in attrs.items():
        for v in value if isinstance(value, list) else [value]:
            out.append((key, _ini_value(v)))
    return out


def sections_of_unit(kind: str, unit: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    """The INI sections NixOS writes for one netdevs/networks entry (as evaluated)."""
    options = {v: k for k, v in (NETDEV_OPTIONS if kind == "netdev" else NETWORK_OPTIONS).items()}
    lists = {v: k for k, v in (NETDEV_LISTS if kind == "netdev" else NETWORK_LISTS).items()}
    key_lists = {v: k for k, v in NETWORK_KEY_LISTS.items()} if kind == "network" else {}
    out = []
    network_extra = []
    for attr, value in unit.items():
        if attr in options:
            out.append((options[attr], _pairs(value)))
        elif attr in lists:
            out += [(lists[attr], _pairs(item)) for item in value]
        elif attr in key_lists:
            network_extra += [(key_lists[attr], _ini_value(v)) for v in value]
        elif attr == "extraConfig":
            out += parse_ini(value)
        else:
            raise AssertionError(f"{kind} option {attr} is not one vnetc means to write")
    if network_extra:
        out.append(("Network", network_extra))
    return out


def normalized(sections) -> dict:
    """Section name -> its keys (sections merged, as systemd does) or, for repeatable ones, its entries."""
    out: dict = {}
    for name, pairs in sections:
        if name in REPEATABLE:
            out.setdefault(name, []).append(tuple(sorted(pairs)))
        else:
            out.setdefault(name, []).extend(pairs)
    return {name: sorted(value) for name, value in out.items()}


def networkd_units(rendering) -> dict[tuple[str, str], dict]:
    units = {}
    for artifact in rendering.files:
        stem, _, ext = artifact.name.rpartition(".")
        if ext in ("netdev", "network"):
            units[(ext, stem)] = normalized(parse_ini(artifact.content))
    return units


# --------------------------------------------------------------------------
# every example and golden case


@pytest.mark.parametrize("name,path", SOURCES, ids=[n for n, _ in SOURCES])
def test_module_parses_and_evaluates_to_the_networkd_rendering(name, path, tmp_path):
    require_nix()
    site, hosts = rendered(path)
    for host, nixos_out, networkd_out in hosts:
        file = tmp_path / f"{host.name or 'host'}.nix"
        file.write_text(module_of(nixos_out), "utf-8")
        parse = nix("--parse", str(file))
        assert parse.returncode == 0, parse.stderr
        data = evaluate(file)
        net = data["systemd"]["network"]
        assert net["enable"] is True
        got = {}
        for kind, option in (("netdev", "netdevs"), ("network", "networks")):
            for stem, unit in net[option].items():
                got[(kind, stem)] = normalized(sections_of_unit(kind, unit))
        want = networkd_units(networkd_out)
        assert sorted(got) == sorted(want)
        for unit in want:
            assert got[unit].keys() == want[unit].keys(), unit
            for section in want[unit]:
                assert got[unit][section] == want[unit][section], (unit, section)
        # the residual: the same file the networkd-style residual would write, run by a service
        if nixos_out.residual:
            json_file = next(a for a in residual_artifacts(NIXOS, site, host, nixos_out.residual)
                             if a.name.endswith(".json"))
            assert data["environment"]["etc"]["vnetc/residual/nixos.json"]["text"] == json_file.content
            service = data["systemd"]["services"]["vnetc-residual-nixos"]
            assert service["serviceConfig"]["Type"] == "oneshot"
            assert service["serviceConfig"]["ExecStart"] == \
                "vnetc apply --residual /etc/vnetc/residual/nixos.json --yes"
            assert "systemd-networkd.service" in service["after"]
            assert "systemd-networkd.service" in service["wants"]
        else:
            assert "services" not in data["systemd"] and "environment" not in data


@pytest.mark.parametrize("name,path", SOURCES, ids=[n for n, _ in SOURCES])
def test_every_emitted_key_is_allowed_and_only_the_rest_is_extra_config(name, path):
    _, hosts = rendered(path)
    for _, _, networkd_out in hosts:
        for artifact in networkd_out.files:
            stem, _, kind = artifact.name.rpartition(".")
            if kind not in ("netdev", "network"):
                continue
            attrs = unit_attrs(kind, parse_ini(artifact.content))
            options = {v: k for k, v in (NETDEV_OPTIONS if kind == "netdev" else NETWORK_OPTIONS).items()}
            lists = {v: k for k, v in (NETDEV_LISTS if kind == "netdev" else NETWORK_LISTS).items()}
            for attr, value in attrs.items():
                if attr in options or attr in lists:
                    section = options.get(attr) or lists[attr]
                    items = value if attr in lists else [value]
                    allowed = ALLOWED.get((kind, section))
                    if section != "Match":
                        assert allowed is not None, f"no allow-list for [{section}]"
                        for item in items:
                            assert set(item) <= set(allowed), (artifact.name, section, set(item) - set(allowed))
                            for key, v in item.items():
                                if (kind, section, key) in INT_KEYS:
                                    assert isinstance(v, int) and not isinstance(v, bool), (section, key, v)
                elif attr in NETWORK_KEY_LISTS.values():
                    assert kind == "network"
                    keys = {k for k, a in NETWORK_KEY_LISTS.items() if a == attr}
                    assert keys <= set(ALLOWED[("network", "Network")])
                elif attr == "extraConfig":
                    for section, pairs in parse_ini(value):
                        allowed = ALLOWED.get((kind, section))
                        rejected = [k for k, v in pairs if allowed is not None and k not in allowed
                                    or (kind, section, k) in INT_KEYS and not re.fullmatch(r"0|[1-9][0-9]*", v)]
                        if allowed is None:
                            continue   # NixOS has no option for the section at all
                        if section in REPEATABLE:
                            assert rejected, f"{artifact.name}: [{section}] needs no extraConfig"
                        else:
                            assert len(rejected) == len(pairs), f"{artifact.name}: [{section}] {pairs} {rejected}"
                else:
                    raise AssertionError(f"{artifact.name}: unexpected attribute {attr}")


@pytest.mark.parametrize("name,path", SOURCES[:5], ids=[n for n, _ in SOURCES[:5]])
def test_deterministic(name, path):
    site = compile_file(str(path)).site
    for host in site.hosts:
        assert module_of(NIXOS.render(site, host)) == module_of(NIXOS.render(site, host))


# --------------------------------------------------------------------------
# escaping


TRICKY = ['plain', 'a "quoted" word', 'back\\slash', 'dollar ${not_interpolated} $x', 'line\nbreak\ttab\r',
          "two '' quotes", "''${x}''", "", "\\${", "$${x}", "multi\nline\n'' ${y}\n"]


@pytest.mark.parametrize("text", TRICKY)
def test_nix_string_escaping_round_trips(text):
    require_nix()
    assert eval_expr(nix_string(text)) == text
    assert eval_expr(nix_value(text, 2)) == text


def test_indented_strings_round_trip():
    require_nix()
    text = "[Bridge]\nHelloTimeSec=2s\n  indented ${x} '' \\n\nlast\n"
    expr = nix_value({"extraConfig": text}, 0)
    assert "''" in expr.splitlines()[1]
    assert eval_expr(expr) == {"extraConfig": text}


def test_tricky_description_end_to_end(tmp_path):
    require_nix()
    source = 'dummy d0 {\n    description "say \\"hi\\" to C:\\\\ and $HOME {x}"\n}\n'
    site = compile_source(source, "t.vnet").site
    (host,) = site.hosts
    text = module_of(NIXOS.render(site, host))
    file = tmp_path / "m.nix"
    file.write_text(text, "utf-8")
    assert nix("--parse", str(file)).returncode == 0
    data = evaluate(file)
    description = 'say "hi" to C:\\ and $HOME {x}'
    assert data["systemd"]["network"]["netdevs"]["10-vnetc-d0"]["netdevConfig"]["Description"] == description
    assert data["systemd"]["network"]["networks"]["10-vnetc-d0"]["networkConfig"]["Description"] == description


# --------------------------------------------------------------------------
# secrets


MACSEC = """interface eth1

macsec ms0 {{
    link eth1
    tx-sa 0 {{
        key-id 01
        {key}
    }}
}}
"""


def test_inline_key_is_an_error_with_a_position_and_a_hint(tmp_path):
    src = tmp_path / "ms.vnet"
    src.write_text(MACSEC.format(key="key 00112233445566778899aabbccddeeff"), "utf-8")
    run = run_vnetc("build", str(src), "-t", "nixos", "-o", str(tmp_path / "out"))
    assert run.exit_code == 3
    assert "ms.vnet:7:" in run.stderr
    assert "nixos: macsec 'ms0' key:" in run.stderr
    assert "world-readable Nix store" in run.stderr and "key-file" in run.stderr
    assert "00112233445566778899aabbccddeeff" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_key_file_becomes_key_file(tmp_path):
    site = compile_source(MACSEC.format(key='key-file "/etc/vnetc/keys/ms0.key"'), "t.vnet").site
    (host,) = site.hosts
    out = NIXOS.render(site, host)
    assert out.errors == []
    text = module_of(out)
    assert "KeyFile=/etc/vnetc/keys/ms0.key" in text
    assert "Key=" not in text.replace("KeyFile=", "")


def test_module_is_the_only_file_the_target_renders():
    site = compile_source("interface eth0 {\n    address 10.0.0.1/24\n}\n", "t.vnet").site
    (host,) = site.hosts
    out = NIXOS.render(site, host)
    assert [(a.name, a.install_dir) for a in out.files] == [("vnetc.nix", nixos.INSTALL_DIR)]
    assert out.residual == [] and out.errors == []
