"""Training never exports what cannot work: non-finite weights are refused on export and on load,
a diverging loss stops the run, a run without any supervised loss term is an error, and model
outputs can be checked for NaN/Inf (``facebehavior.models.outputs``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("lightning")

from facebehavior.models import create_model  # noqa: E402
from facebehavior.models.outputs import (  # noqa: E402
    NonFiniteError,
    check_finite_outputs,
    nonfinite_rows,
    nonfinite_tensors,
)
from facebehavior.models.weights import CheckpointError, WeightSpec, load_weights, save_checkpoint  # noqa: E402
from test_train import _fer_recipe  # noqa: E402
from test_train_multitask import AU_COLS, _manifest, _recipe  # noqa: E402


def _spec() -> WeightSpec:
    return WeightSpec(
        name="t", architecture="arl_tiny", arch_kwargs={}, tasks={"au": ("AU01", "AU02", "AU12")}
    )


def test_nonfinite_weights_are_neither_written_nor_loaded(tmp_path):
    model = create_model("arl_tiny")
    state = model.state_dict()
    assert nonfinite_tensors(state) == []
    path = tmp_path / "ok.safetensors"
    save_checkpoint(state, _spec(), path)
    load_weights(path)
    state["head_bias"] = torch.tensor([0.0, float("nan"), 0.0])
    assert nonfinite_tensors(state) == ["head_bias"]
    bad = tmp_path / "bad.safetensors"
    with pytest.raises(CheckpointError, match="non-finite weights"):
        save_checkpoint(state, _spec(), bad)
    assert not bad.exists()
    # A file exported before this check (written directly) is refused on load.
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in state.items()},
        str(bad),
        metadata={"facebehavior.spec": _spec().to_json()},
    )
    with pytest.raises(CheckpointError, match="NaN/Inf"):
        load_weights(bad)


def test_output_checks():
    out = {"au": torch.zeros(4, 3), "va": torch.zeros(4, 2), "labels": torch.zeros(4, dtype=torch.long)}
    check_finite_outputs(out)
    np.testing.assert_array_equal(nonfinite_rows(out), [False] * 4)
    out["va"][2, 1] = float("inf")
    out["au"][0, 0] = float("nan")
    np.testing.assert_array_equal(nonfinite_rows(out), [True, False, True, False])
    with pytest.raises(NonFiniteError, match=r"\['au', 'va'\] for 2 face"):
        check_finite_outputs(out, where="arl")
    np.testing.assert_array_equal(nonfinite_rows({"va": np.full((2, 2), np.nan)}), [True, True])


def test_guard_stops_a_diverging_or_unsupervised_run():
    from facebehavior.train.runner import TrainingGuard, UnsupervisedTrainingError

    trainer = SimpleNamespace(global_step=7, current_epoch=0, num_training_batches=100, world_size=1)
    with pytest.raises(FloatingPointError, match="nan at step 7"):
        TrainingGuard().on_train_batch_end(trainer, None, {"loss": torch.tensor(float("nan"))}, None, 0)
    guard = TrainingGuard(zero_steps=3)
    for _ in range(2):
        guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.0)}, None, 0)
    with pytest.raises(UnsupervisedTrainingError, match="exactly 0 for the first 3 steps"):
        guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.0)}, None, 0)
    ok = TrainingGuard(zero_steps=3)
    for v in (0.0, 0.5, 0.0, 0.0):
        ok.on_train_batch_end(trainer, None, {"loss": torch.tensor(v)}, None, 0)


def test_fit_refuses_a_recipe_without_labels_for_its_weighted_tasks(tmp_path):
    from facebehavior.train.runner import UnsupervisedTrainingError, fit

    # FER+ has expression labels only; with the expression term off nothing is supervised.
    kwargs = {"num_expressions": 8, "aus": [1, 2], "va": False, "in_channels": 1}
    r = _fer_recipe(
        tmp_path, "u", loss={"expression": {"weight": 0.0}, "au": {"weight": 1.0}}, model__kwargs=kwargs
    )
    with pytest.raises(UnsupervisedTrainingError, match="no supervised loss term"):
        fit(r)
    assert not list((tmp_path / "u").glob("*.safetensors"))


def test_fit_refuses_a_model_without_the_weighted_output(tmp_path):
    from facebehavior.train.runner import UnsupervisedTrainingError, fit

    # VA labels exist and VA is weighted, but the model has no VA head: every step's loss is
    # exactly 0 (the view classifier of issue #16 exported an untrained model this way).
    root = _manifest(tmp_path / "m", n=48, videos=2)
    sets = {"va": {"dataset": "manifest", "root": str(root), "split": "train"}}
    model = {
        "name": "facebehaviornet_mobile_tiny",
        "kwargs": {"num_expressions": 7, "aus": list(AU_COLS), "va": False},
    }
    r = _recipe(tmp_path, sets, model, loss={"expression": {"weight": 0.0}, "au": {"weight": 0.0}})
    r.data.batch_size = 4
    with pytest.raises(UnsupervisedTrainingError, match="exactly 0 for the first 9 steps"):
        fit(r)
    assert not list((tmp_path / "run").glob("*.safetensors"))
