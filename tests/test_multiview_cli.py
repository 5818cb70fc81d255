"""AUNets' multi-view system from the CLI: a view classifier and two per-view AU detectors trained with
``facebehavior train`` on the tiny FERA 2017 tree of tests/test_train_views.py, joined by
``facebehavior compose-multiview``, then run by ``analyze --model`` and ``evaluate``; and the composed
checkpoint equal to the ``ViewSpecificEnsemble`` built in Python from the same parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from facebehavior.cli import main
from facebehavior.models import create_model
from facebehavior.models.aunets import ViewSpecificEnsemble
from facebehavior.models.weights import InputSpec, WeightSpec, load_weights, read_spec, save_checkpoint
from test_train_views import SIZE, fera17_tree

INPUT = {"size": SIZE, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3, "template": "arcface_loose"}
INPUT_SPEC = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in INPUT.items()})
AUS = [1, 12]


def _part(path: Path, name: str, seed: int, **kwargs) -> Path:
    """A randomly initialised tiny part saved as an exported checkpoint."""
    torch.manual_seed(seed)
    model = create_model(name, **kwargs)
    spec = WeightSpec(name=path.stem, architecture=name, arch_kwargs=kwargs,
                      input=INPUT_SPEC,
                      tasks=dict(model.task_labels))  # fmt: skip
    save_checkpoint(model.state_dict(), spec, path)
    return path


def _python_ensemble(views: Path, detectors: list[Path]) -> ViewSpecificEnsemble:
    return ViewSpecificEnsemble(load_weights(views)[0], [load_weights(p)[0] for p in detectors]).eval()


def test_composed_checkpoint_equals_the_python_ensemble(tmp_path):
    torch.set_num_threads(1)
    views = _part(tmp_path / "views.safetensors", "aunets_view_classifier_tiny", 0, num_views=3)
    a = _part(tmp_path / "a.safetensors", "hydranet_tiny", 1, aus=AUS)
    b = _part(tmp_path / "b.safetensors", "hydranet_tiny", 2, aus=AUS)
    out = tmp_path / "mv.safetensors"
    assert main(["compose-multiview", "--views", str(views), "--detector", f"0={a}",
                 "--detector", f"1,2={b}", "-o", str(out)]) == 0  # fmt: skip
    spec = read_spec(out)
    assert spec.architecture == "aunets_multiview" and spec.tasks == {"au": ("AU01", "AU12")}
    assert spec.input == read_spec(a).input
    model, _ = load_weights(out)
    ref = _python_ensemble(views, [a, b, b])
    x = torch.randn(5, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, want = model(x), ref(x)
        for k in ("au", "view_logits", "view"):
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)
        # Each view routes to its own file's detector: force every view in turn.
        assert not torch.allclose(load_weights(a)[0](x)["au"], load_weights(b)[0](x)["au"])
        for v, det in enumerate([a, b, b]):
            bias = torch.zeros(3).index_fill(0, torch.tensor(v), 1e3)
            model.view_classifier.heads["view"].bias.copy_(bias)
            got = model(x)
            assert int(got["view"]) == v
            torch.testing.assert_close(got["au"], load_weights(det)[0](x)["au"], rtol=0, atol=0)


def test_compose_refuses_parts_that_do_not_fit(tmp_path, caplog):
    views = _part(tmp_path / "views.safetensors", "aunets_view_classifier_tiny", 0, num_views=2)
    a = _part(tmp_path / "a.safetensors", "hydranet_tiny", 1, aus=AUS)
    other = _part(tmp_path / "other.safetensors", "hydranet_tiny", 2, aus=[1, 2, 12])
    out = tmp_path / "mv.safetensors"
    cases = [
        ([f"0={a}"], "views [1]"),  # a view without a detector
        ([f"0={a}", f"1={other}"], "another architecture"),  # other AUs
        ([f"0,1={a}", f"2={a}"], "outside the classifier's views"),
        ([f"0={a}", f"0,1={a}"], "two detectors"),
        ([f"x={a}"], "0-based view index"),
        ([str(a)], "V[,V...]=PATH"),
        ([f"0={a}", f"1={tmp_path / 'none.safetensors'}"], "not found"),
    ]
    for dets, message in cases:
        caplog.clear()
        args = ["compose-multiview", "--views", str(views), "-o", str(out)]
        for d in dets:
            args += ["--detector", d]
        assert main(args) == 2, dets
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and message in errors[0] and "\n" not in errors[0], (dets, errors)
    caplog.clear()
    assert main(["compose-multiview", "--views", str(a), "--detector", f"0={a}", "-o", str(out)]) == 2
    assert "not a view classifier" in caplog.records[-1].getMessage()
    assert not out.exists()


def _recipe(path: Path, root: Path, out: Path, model: dict, pose: list[int], export: str, **extra) -> Path:
    r = {
        "name": export,
        "seed": 0,
        "output_dir": str(out),
        "model": model,
        "input": INPUT,
        "data": {
            "batch_size": 4,
            "eval_batch_size": 8,
            "num_workers": 0,
            "val": [],
            "sets": {
                "s": {"dataset": "fera2017", "root": str(root), "split": "train", "options": {"pose": pose}}
            },
        },  # fmt: skip
        "augment": {"target": None},
        "optim": {"name": "adam", "lr": 1e-3, "schedule": "none", "weight_decay": 0.0},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "log_every_n_steps": 1, "max_steps": 3},
        "checkpoint": {"monitor": "train/loss", "mode": "min", "export": f"{export}.safetensors"},
        **extra,
    }
    path.write_text(yaml.safe_dump(r))
    return path


def test_multiview_train_compose_evaluate_analyze_cli(tmp_path):
    pytest.importorskip("lightning")
    pytest.importorskip("av")
    import pandas as pd

    from facebehavior.data.datasets import create_dataset
    from facebehavior.models.transforms import preprocess
    from facebehavior.pipeline import Analyzer
    from test_pipeline_clips import face_video

    torch.set_num_threads(1)
    frames = 4
    root = fera17_tree(tmp_path / "FERA2017", ["F001", "F002", "M001"], [1, 9], frames=frames)
    run = tmp_path / "runs"
    r = _recipe(tmp_path / "views.yaml", root, run / "views", {"name": "aunets_view_classifier_tiny"},
                [1, 9], "views", loss={"view": {"weight": 1.0}})  # fmt: skip
    assert main(["train", str(r)]) == 0
    dets = []
    for pose in (1, 9):
        model = {"name": "hydranet_tiny", "kwargs": {"aus": AUS}}
        r = _recipe(tmp_path / f"au{pose}.yaml", root, run / f"au{pose}", model, [pose], f"au{pose}")
        assert main(["train", str(r)]) == 0
        dets.append(run / f"au{pose}" / f"au{pose}.safetensors")
    views = run / "views" / "views.safetensors"
    out = tmp_path / "multiview.safetensors"
    # The classifier has FERA 2017's 9 views; views 0-3 take the pose-1 detector, 4-8 the pose-9 one.
    assert main(["compose-multiview", "--views", str(views), "--detector", f"0,1,2,3={dets[0]}",
                 "--detector", f"4,5,6,7,8={dets[1]}", "-o", str(out)]) == 0  # fmt: skip
    ref = _python_ensemble(views, [dets[0]] * 4 + [dets[1]] * 5)
    spec = read_spec(out)

    # evaluate: one view at a time, the whole split in one batch (one view pick), = the ensemble.
    js = tmp_path / "eval.json"
    assert main(["evaluate", str(out), "--dataset", "fera2017", "--root", str(root), "--split", "train",
                 "--option", "pose=9", "--no-detect", "--json", str(js)]) == 0  # fmt: skip
    res = json.loads(js.read_text())
    ds = create_dataset("fera2017", root, pose=9)
    t = ds.load("train")
    assert res["dataset"]["n"] == len(t) == 3 * frames
    x = preprocess(np.stack(ds.read_images(t, range(len(t)))), spec.input)
    with torch.no_grad():
        prob = torch.sigmoid(ref(x)["au"]).numpy()
    from sklearn.metrics import f1_score

    y = t.au_occurrence[:, [t.aus.index(a) for a in AUS]]
    want = [f1_score(y[:, j], prob[:, j] >= 0.5, zero_division=0) for j in range(len(AUS))]
    got = [res["au"]["per_au_f1"][f"AU{a:02d}"] for a in AUS]
    np.testing.assert_allclose(got, want, atol=1e-6)

    # analyze: one row per frame, one probability column per AU of the detectors, = the ensemble on
    # the crops of the batch (a batch of frames of one video: one view for it).
    video = face_video(tmp_path / "clip.mp4", frames=frames)
    csv = tmp_path / "out.csv"
    assert main(["analyze", str(video), "--model", str(out), "-o", str(csv)]) == 0
    df = pd.read_csv(csv)
    assert len(df) == frames and (df["success"] == 1).all()
    assert sorted(c for c in df.columns if c.startswith("AU")) == ["AU01_prob", "AU12_prob"]
    an = Analyzer(model=str(out), batch_size=frames)
    stage = an.stage("predict")
    seen: list[np.ndarray] = []
    run_model = stage.run

    def record(crops, *rest):
        seen.append(crops.copy())
        return run_model(crops, *rest)

    stage.run = record
    again = an.analyze(str(video))
    assert len(seen) == 1
    with torch.no_grad():
        expect = torch.sigmoid(ref(preprocess(seen[0], spec.input))["au"]).numpy()
    for j, a in enumerate(AUS):
        np.testing.assert_allclose(again[f"AU{a:02d}_prob"].to_numpy(), expect[:, j], atol=1e-5)
        np.testing.assert_allclose(df[f"AU{a:02d}_prob"].to_numpy(), expect[:, j], atol=1e-4)
