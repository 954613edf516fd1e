"""Golden cases.

golden/<case>/input.vnet (or, for the examples, the file named by `input` in
golden/<case>/golden.yml) is the input. golden/<case>/golden.yml holds what
`vnetc check` prints (exit code and stderr) and, for valid input, the IR JSON;
golden/<case>/<target>.yml holds what `vnetc build -t <target>` writes (every
file, its mode when not 0644) and prints. `pytest --update-goldens` rewrites
the YAML; read the diff before committing it. A new target gets a
<target>.yml in every case whose input is valid, and an entry in TARGETS.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from conftest import run_vnetc

#: the targets with golden output (golden/<case>/<target>.yml)
TARGETS = ["networkd", "netplan", "nixos", "nm", "iproute2"]


def case_input(case: Path) -> str:
    """The input file of a case, relative to the case directory."""
    meta = case / "golden.yml"
    named = (YAML(typ="safe").load(meta.read_text("utf-8")) or {}).get("input") if meta.exists() else None
    if named is not None:
        assert (case / named).is_file(), f"{case}: input {named} does not exist"
        return named
    assert (case / "input.vnet").is_file(), f"{case} has no input.vnet"
    return "input.vnet"


def build(case: Path, source: str, target: str) -> dict:
    """What `vnetc build -t target` writes and prints for the case."""
    with tempfile.TemporaryDirectory() as out:
        run = run_vnetc("build", source, "-t", target, "-o", out, cwd=case)
        files, modes = {}, {}
        base = Path(out) / target
        for path in sorted(base.rglob("*")) if base.exists() else []:
            if path.is_file() and not path.name.startswith(".vnetc-"):
                name = str(path.relative_to(base))
                files[name] = path.read_text("utf-8")
                mode = path.stat().st_mode & 0o7777
                if mode != 0o644:
                    modes[name] = f"{mode:04o}"
        result = {"exit": run.exit_code, "stderr": run.stderr.replace(out, "OUT"), "files": files}
        if modes:
            result["modes"] = modes
        return result


@pytest.mark.golden_test("../golden/*/golden.yml")
def test_golden(golden):
    case = Path(golden.path).parent
    source = case_input(case)
    check = run_vnetc("check", source, cwd=case)
    assert golden.out["check"] == {"exit": check.exit_code, "stderr": check.stderr}
    if check.exit_code == 0:
        ir = run_vnetc("ir", source, cwd=case)
        assert ir.exit_code == 0
        assert golden.out["ir"] == json.loads(ir.stdout)
    else:
        for target in TARGETS:
            assert not (case / f"{target}.yml").exists(), f"{case}: invalid input needs no {target}.yml"


def test_every_valid_case_has_every_target():
    root = Path(__file__).resolve().parent.parent / "golden"
    for case in sorted(p for p in root.iterdir() if p.is_dir()):
        if run_vnetc("check", case_input(case), cwd=case).exit_code == 0:
            missing = [t for t in TARGETS if not (case / f"{t}.yml").exists()]
            assert not missing, f"{case.name} has no golden output for {missing}"


def _target_test(target: str):
    @pytest.mark.golden_test(f"../golden/*/{target}.yml")
    def test(golden):
        case = Path(golden.path).parent
        assert golden.out[target] == build(case, case_input(case), target)

    test.__name__ = f"test_golden_{target}"
    return test


for _target in TARGETS:
    globals()[f"test_golden_{_target}"] = _target_test(_target)
