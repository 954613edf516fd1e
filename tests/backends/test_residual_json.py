"""residual.dumps writes the residual file's JSON itself (json's indented encoder is pure Python
and slow on a 16,000-device host): it must give exactly the bytes of
json.dumps(value, indent=2, ensure_ascii=False), for any JSON value. Random values, seeded
(hypothesis' recursive strategies take seconds per hundred values here)."""

from __future__ import annotations

import json
import random

import pytest

from vnetc.backends.residual import dumps

_TEXT = 'aZ0 -_:/.\\"\n\t\x00\x1f\x7fé€𝄞\u2028'


def _value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-2**70, 2**70)
    if kind == 3:
        return rng.choice([0.0, -0.0, 1.5, 1e300, -2.5e-308, float("inf"), float("-inf"), rng.random()])
    if kind in (4, 5):
        return "".join(rng.choice(_TEXT) for _ in range(rng.randrange(8)))
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == 7:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {"".join(rng.choice(_TEXT) for _ in range(rng.randrange(5))): _value(rng, depth + 1)
            for _ in range(rng.randrange(5))}


@pytest.mark.parametrize("seed", range(20))
def test_dumps_is_json_dumps_with_an_indent(seed):
    rng = random.Random(seed)
    for _ in range(200):
        value = _value(rng)
        ours, theirs = dumps(value), json.dumps(value, indent=2, ensure_ascii=False)
        assert ours == theirs, value


def test_keys_that_are_not_strings_are_written_as_json_writes_them():
    value = {1: "a", "b": {2.5: [True, None]}, None: (), False: {}}
    assert dumps(value) == json.dumps(value, indent=2, ensure_ascii=False)
