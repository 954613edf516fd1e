"""Golden cases: golden/<case>/input.vnet (or the file named by `input` in
golden/<case>/golden.yml, for the examples) and, in golden.yml, what vnetc
prints and writes for it: `check` (exit code and stderr), for valid input the
IR JSON, and every target's files. `pytest --update-goldens` rewrites the YAML;
read the diff before committing it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from conftest import run_vnetc

TARGETS = ["networkd"]


def _input(golden, case: Path) -> str:
    named = golden.get("input")
    if named is not None:
        assert (case / named).is_file(), f"{case}: input {named} does not exist"
        return named
    assert (case / "input.vnet").is_file(), f"{case} has no input.vnet"
    return "input.vnet"


def _build(case: Path, source: str, target: str) -> dict:
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
    source = _input(golden, case)
    check = run_vnetc("check", source, cwd=case)
    assert golden.out["check"] == {"exit": check.exit_code, "stderr": check.stderr}
    if check.exit_code != 0:
        return
    ir = run_vnetc("ir", source, cwd=case)
    assert ir.exit_code == 0
    assert golden.out["ir"] == json.loads(ir.stdout)
    for target in TARGETS:
        assert golden.out[target] == _build(case, source, target)
