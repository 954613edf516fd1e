"""Golden cases: golden/<case>/input.vnet and, in golden/<case>/golden.yml, what
vnetc prints for it: `check` (exit code and stderr) and, for valid input, the
IR JSON. `pytest --update-goldens` rewrites the YAML; read the diff before
committing it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_vnetc


@pytest.mark.golden_test("../golden/*/golden.yml")
def test_golden(golden):
    case = Path(golden.path).parent
    assert (case / "input.vnet").is_file(), f"{case} has no input.vnet"
    check = run_vnetc("check", "input.vnet", cwd=case)
    assert golden.out["check"] == {"exit": check.exit_code, "stderr": check.stderr}
    if check.exit_code == 0:
        ir = run_vnetc("ir", "input.vnet", cwd=case)
        assert ir.exit_code == 0
        assert golden.out["ir"] == json.loads(ir.stdout)
