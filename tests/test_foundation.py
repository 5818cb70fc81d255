import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from facebehavior import schema
from facebehavior.models.weights import CheckpointError, InputSpec, WeightSpec, read_spec, save_checkpoint
from facebehavior.registry import Registry


def test_import_does_no_work():
    code = (
        "import sys, facebehavior; "
        "heavy = [m for m in ('torch', 'av', 'pandas', 'facebehavior.models') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_au_catalogue_covers_every_paper_au():
    needed = {1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 17, 20, 23, 24, 25, 26, 43, 45}
    assert set(schema.AU_NUMBERS) == needed
    for subset in schema.DATASET_AU_SUBSETS.values():
        assert set(subset) <= needed
    assert len(schema.AUS_17) == 17
    assert schema.au_subset("BP4D") == (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
    assert schema.get_au(12).name == "Lip Corner Puller"
    with pytest.raises(KeyError, match="known AUs"):
        schema.get_au(3)


def test_column_names():
    assert schema.au_column(12, "intensity", "openface") == "AU12_r"
    assert schema.au_column(1, "prob", "openface") == "AU01_c"
    assert schema.au_column(12, "prob") == "AU12_prob"
    assert schema.EXPRESSIONS_8[-1] == "contempt" and schema.EXPRESSIONS_8[:7] == schema.EXPRESSIONS_7
    cols = schema.face_columns()
    assert cols[:4] == ["source", "frame", "timestamp", "face_id"] and "right_eye_x" in cols


def test_registry_unknown_name_lists_valid():
    r: Registry = Registry("widget")
    r.register("a")(lambda: 1)
    with pytest.raises(KeyError, match=r"valid: \['a'\]"):
        r.get("b")
    with pytest.raises(ValueError):
        r.register("a")(lambda: 2)


def test_weight_spec_roundtrip(tmp_path):
    spec = WeightSpec(
        name="x",
        architecture="nothing",
        input=InputSpec(size=96, channels=1, mean=(0.5,), std=(0.5,)),
        tasks={"expression": schema.EXPRESSIONS_7},
        extra={"acc": 0.5},
    )
    path = tmp_path / "w.safetensors"
    digest = save_checkpoint({"w": torch.zeros(2)}, spec, path)
    back = read_spec(path)
    assert back.sha256 == digest
    assert json.loads(back.to_json()) == json.loads(spec.to_json())
    assert back.input.mean == (0.5,)


def test_corrupt_checkpoint_message(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        read_spec(bad)
    with pytest.raises(CheckpointError, match="not found"):
        read_spec(tmp_path / "missing.safetensors")
    assert np.isfinite(1.0)
