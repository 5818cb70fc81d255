"""models.transforms: the one preprocessing path (training, evaluation and inference give the
same tensor, bit for bit) and the one post-processing (against scipy's softmax and sigmoid)."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import special

from facebehavior.models.transforms import normalise, postprocess, preprocess, resolve_input
from facebehavior.models.weights import CheckpointError, InputSpec, WeightSpec

REPO = Path(__file__).resolve().parent.parent
PHOTO = REPO / "samples" / "face.jpg"
# Hand-read from the photo (four people): regions holding exactly one face each (y0, y1, x0, x1).
ONE_FACE = {"left.jpg": (80, 430, 60, 290), "mid.jpg": (140, 360, 270, 480)}
# The shipped default model's input rule: 48 px grey, FER2013 framing.
GREY = InputSpec(size=48, channels=1, mean=(0.5,), std=(0.5,), template="fer2013")
RGB = InputSpec(
    size=48, channels=3, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), template="fer2013"
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A face-crop cache of two faces of samples/face.jpg, aligned at the default model's size and
    template (what ``facebehavior prepare`` writes for training)."""
    from facebehavior.data.cache import CacheConfig, FaceCache, build_cache
    from facebehavior.data.datasets import create_dataset

    root = tmp_path_factory.mktemp("corpus")
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    for name, (y0, y1, x0, x1) in ONE_FACE.items():
        Image.fromarray(photo[y0:y1, x0:x1]).save(root / name)
    rows = ["image,split,subject,expression", "left.jpg,train,s1,happiness", "mid.jpg,train,s2,sadness"]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    ds = create_dataset("manifest", root / "manifest.csv")
    out = root / "cache"
    config = CacheConfig(size=GREY.size, template=GREY.template, facemesh=False, shard_size=2, batch_size=2)
    build_cache(ds, ds.load("train"), out, config)
    c = FaceCache(out)
    assert len(c) == 2, "both faces must be found"
    return root, out, np.stack([c.crop(i) for i in range(len(c))])  # (2, 48, 48, 3) uint8 RGB


def _recipe(inp: InputSpec, root: Path, out: Path):
    from facebehavior.train.config import parse_recipe

    data = {
        "name": "t",
        "seed": 0,
        "model": {
            "name": "facebehaviornet_mobile_tiny",
            "kwargs": {"num_expressions": 8, "aus": [], "va": False, "in_channels": inp.channels},
        },
        "input": {
            "size": inp.size,
            "channels": inp.channels,
            "mean": list(inp.mean),
            "std": list(inp.std),
            "template": inp.template,
        },  # fmt: skip
        "data": {
            "batch_size": 2,
            "eval_batch_size": 2,
            "sets": {"expr": {"dataset": "manifest", "root": str(root / "manifest.csv"), "cache": str(out)}},
            "val": [{"dataset": "manifest", "root": str(root / "manifest.csv"), "cache": str(out)}],
        },
        "augment": {"target": None},
        "optim": {"name": "sgd", "lr": 0.01},
        "trainer": {"channels_last": False},
    }
    return parse_recipe(data)


@pytest.mark.parametrize("inp", [GREY, RGB], ids=["grey", "rgb"])
def test_training_evaluation_and_inference_see_the_same_tensor(cache, inp, monkeypatch) -> None:
    """One aligned face through (a) the training data module and the Lightning module's input step
    (the cache read path included), (b) ``facebehavior evaluate``'s path, (c) ``preprocess`` as the
    Analyzer calls it on the aligner's crops: bit-identical tensors."""
    from facebehavior.schema import EXPRESSIONS_8
    from facebehavior.train import evaluate
    from facebehavior.train.config import SetConfig
    from facebehavior.train.module import FaceBehaviorDataModule, FaceBehaviorModule

    root, out, crops = cache
    inference = preprocess(crops, WeightSpec("t", "x", input=inp))  # (c)
    assert inference.shape == (2, inp.channels, inp.size, inp.size) and inference.dtype == torch.float32

    recipe = _recipe(inp, root, out)
    module = FaceBehaviorModule(recipe)
    dm = FaceBehaviorDataModule(recipe, aus=())
    dm.setup()
    # (a) training batches (sampled order: the expression label tells the row) and validation batches
    order = {EXPRESSIONS_8.index("happiness"): 0, EXPRESSIONS_8.index("sadness"): 1}
    seen = 0
    for batch in dm.train_dataloader():
        x = module.preprocess(batch["image"], train=True)  # no augmentation in this recipe
        for j, label in enumerate(batch["expression"].tolist()):
            assert torch.equal(x[j], inference[order[label]]), "training input differs from inference"
            seen += 1
    assert seen >= 2
    (val,) = dm.val_dataloader()
    x = torch.cat([module.preprocess(b["image"], train=False) for b in val])
    assert torch.equal(x, inference), "validation input differs from inference"

    # (b) evaluation: the model records what it is fed
    fed: list[torch.Tensor] = []

    class Recorder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            fed.append(x.clone())
            return {"expression": x.flatten(1)[:, :8] * 3.0}

    spec = WeightSpec("t", "x", input=inp, tasks={"expression": EXPRESSIONS_8})
    monkeypatch.setattr(evaluate, "load_weights", lambda path: (Recorder(), spec))
    cfg = SetConfig(dataset="manifest", root=str(root / "manifest.csv"), cache=str(out))
    _, pred = evaluate.evaluate_checkpoint("unused.safetensors", cfg, batch_size=1)
    assert torch.equal(torch.cat(fed), inference), "evaluation input differs from inference"
    logits = torch.cat(fed).flatten(1)[:, :8] * 3.0
    np.testing.assert_array_equal(
        pred["pred_expression"], postprocess(spec, {"expression": logits})["expression"]
    )


def test_shipped_model_gives_the_same_predictions_on_every_path(cache, monkeypatch) -> None:
    """The shipped default model on two faces of samples/face.jpg: ``models.default.predict`` (the
    benchmarks), ``facebehavior evaluate`` and preprocess → model → postprocess (the Analyzer's
    order) agree bit for bit."""
    from facebehavior.models.default import load_default_model, predict
    from facebehavior.train import evaluate
    from facebehavior.train.config import SetConfig

    root, out, crops = cache
    model, spec = load_default_model()
    assert spec.input == replace(GREY, features=("blendshapes",))
    with torch.no_grad():
        direct = postprocess(spec, model(preprocess(crops, spec)))
    via_predict = predict(model, spec, crops)
    monkeypatch.setattr(evaluate, "load_weights", lambda path: (model, spec))
    cfg = SetConfig(dataset="manifest", root=str(root / "manifest.csv"), cache=str(out))
    _, via_evaluate = evaluate.evaluate_checkpoint("unused.safetensors", cfg, batch_size=2)
    for task in spec.tasks:
        np.testing.assert_array_equal(via_predict[task], direct[task])
        np.testing.assert_array_equal(via_evaluate[f"pred_{task}"], direct[task])
    # Valid values: probabilities that sum to one, finite AUs, VA in [-1, 1].
    p = direct["expression"]
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert (p >= 0).all() and np.isfinite(direct["au"]).all() and np.abs(direct["va"]).max() <= 1


def test_preprocess_hand_computed() -> None:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    x = preprocess(crops, GREY).numpy()
    luma = crops.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    np.testing.assert_allclose(x[:, 0], (luma - 0.5) / 0.5, atol=2e-6)
    # Grey is computed in float, never rounded to uint8 first (the old training skew): R=10, G=11, B=0
    # has luma 9.447, not 9.
    one = np.zeros((1, 48, 48, 3), np.uint8)
    one[..., 0], one[..., 1] = 10, 11
    np.testing.assert_allclose(preprocess(one, GREY).numpy(), (9.447 / 255 - 0.5) / 0.5, atol=1e-6)
    y = preprocess(crops, RGB).numpy()
    ref = (crops.astype(np.float64) / 255.0 - np.array(RGB.mean)) / np.array(RGB.std)
    np.testing.assert_allclose(y, ref.transpose(0, 3, 1, 2), atol=2e-6)
    # Resizing: a uniform crop stays uniform, down (antialiased) and up; grey is replicated for RGB.
    for side in (96, 30):
        g = preprocess(np.full((2, side, side), 200, np.uint8), RGB).numpy()
        assert g.shape == (2, 3, 48, 48)
        want = (200 / 255 - np.array(RGB.mean)) / np.array(RGB.std)
        np.testing.assert_allclose(g, np.broadcast_to(want[None, :, None, None], g.shape), atol=1e-5)
    # Shrinking averages (antialiasing): a 1-pixel checkerboard at 96 px becomes mid-grey at 48 px,
    # where point sampling would keep one of its two colours.
    board = (np.indices((96, 96)).sum(0) % 2 * 255).astype(np.uint8)[None]
    np.testing.assert_allclose(preprocess(board, GREY).numpy()[..., 1:-1, 1:-1], 0.0, atol=1e-5)


def test_preprocess_layouts_agree() -> None:
    rng = np.random.default_rng(1)
    nhwc = rng.integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    ref = preprocess(nhwc, GREY)
    assert ref.shape == (4, 1, 48, 48)
    nchw = torch.from_numpy(nhwc).permute(0, 3, 1, 2).contiguous()
    assert torch.equal(preprocess(nchw, GREY), ref)
    assert torch.equal(preprocess(torch.from_numpy(nhwc), GREY), ref)
    assert torch.equal(preprocess(nhwc.astype(np.float32) / 255.0, GREY), ref)
    grey = nhwc[..., 0]
    assert torch.equal(preprocess(grey, GREY), preprocess(grey[..., None], GREY))
    assert torch.equal(preprocess(grey, GREY), preprocess(torch.from_numpy(grey)[:, None], GREY))


def test_preprocess_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="faces must be"):
        preprocess(np.zeros((2, 5, 8, 8), np.uint8), GREY)
    with pytest.raises(ValueError, match="faces must be"):
        preprocess(np.zeros((8, 8), np.uint8), GREY)
    with pytest.raises(ValueError, match="uint8 .* or float"):
        preprocess(np.zeros((1, 8, 8, 3), np.int32), GREY)
    with pytest.raises(ValueError, match=r"in \[0, 1\].*divide by 255"):
        preprocess(np.full((1, 8, 8, 3), 200.0, np.float32), GREY)
    with pytest.raises(ValueError, match="channel"):
        normalise(torch.zeros(1, 3, 4, 4), GREY)


def test_resolve_input_sources(tmp_path) -> None:
    from facebehavior.models.default import default_model_path
    from facebehavior.models.weights import read_spec
    from facebehavior.train.config import InputConfig

    spec = WeightSpec("t", "x", input=RGB)
    assert resolve_input(spec) == RGB and resolve_input(RGB) == RGB
    cfg = InputConfig(size=48, channels=3, mean=list(RGB.mean), std=list(RGB.std), template="fer2013")
    assert resolve_input(cfg) == RGB
    assert resolve_input({"size": 48, "channels": 3, "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225], "template": "fer2013"}) == RGB  # fmt: skip
    path = default_model_path()
    assert resolve_input(path) == read_spec(path).input == resolve_input(str(path))
    with pytest.raises(ValueError, match="channels must be 1"):
        resolve_input({"size": 48, "channels": 2, "mean": [0, 0], "std": [1, 1]})
    with pytest.raises(ValueError, match="need 3 value"):
        resolve_input({"size": 48, "channels": 3, "mean": [0.5], "std": [0.5]})
    with pytest.raises(ValueError, match="std > 0"):
        resolve_input({"size": 48, "channels": 1, "mean": [0.5], "std": [0.0]})
    with pytest.raises(ValueError, match="no size, mean"):
        resolve_input({"channels": 1, "std": [1.0]})
    with pytest.raises(CheckpointError, match="not found"):
        resolve_input(tmp_path / "missing.safetensors")


def test_mixed_grey_and_colour_batches_are_replicated_exactly() -> None:
    from facebehavior.train.data import collate

    g = torch.full((2, 1, 4, 4), 7, dtype=torch.uint8)
    c = torch.full((1, 3, 4, 4), 9, dtype=torch.uint8)
    parts = [{"image": g, "set_index": torch.zeros(2)}, {"image": c, "set_index": torch.ones(1)}]
    b = collate(parts)
    assert b["image"].shape == (3, 3, 4, 4) and b["image"].dtype == torch.uint8
    assert (b["image"][:2] == 7).all() and (b["image"][2] == 9).all()
    same = collate([{"image": g, "set_index": torch.zeros(2)}, {"image": g, "set_index": torch.zeros(2)}])
    assert same["image"].shape == (4, 1, 4, 4)


SPEC = WeightSpec(
    "t",
    "x",
    tasks={
        "expression": ("neutral", "happiness", "sadness"),
        "au": ("AU01", "AU12"),
        "va": ("valence", "arousal"),
        "au_intensity": ("AU01", "AU12"),
        "attribute": ("smiling",),
    },
)


def test_postprocess_against_scipy() -> None:
    rng = np.random.default_rng(2)
    raw = {
        "expression": rng.normal(0, 4, (5, 3)).astype(np.float32),
        "au": torch.from_numpy(rng.normal(0, 4, (5, 2)).astype(np.float32)),
        "va": np.tanh(rng.normal(size=(5, 2))).astype(np.float32),
        "au_intensity": rng.uniform(0, 5, (5, 2)).astype(np.float32),
        "attribute": rng.normal(size=(5, 1)).astype(np.float64),
        "features": rng.normal(size=(5, 16)),  # not a task of the spec: ignored
    }
    out = postprocess(SPEC, raw)
    assert list(out) == list(SPEC.tasks) and all(v.dtype == np.float32 for v in out.values())
    want = special.softmax(raw["expression"].astype(np.float64), axis=1)
    np.testing.assert_allclose(out["expression"], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        out["au"], special.expit(raw["au"].numpy().astype(np.float64)), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_array_equal(out["va"], raw["va"])
    np.testing.assert_array_equal(out["au_intensity"], raw["au_intensity"])
    np.testing.assert_array_equal(out["attribute"], raw["attribute"].astype(np.float32))
    # Extreme logits: no overflow, no warning, exact limits.
    big = {
        **raw,
        "expression": np.array([[1e4, 0.0, -1e4]], np.float32),
        "au": np.array([[-1e4, 1e4]], np.float32),
    }
    big = {k: (v[:1] if k not in ("expression", "au") else v) for k, v in big.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ext = postprocess(SPEC, big)
    np.testing.assert_array_equal(ext["expression"], [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(ext["au"], [[0.0, 1.0]])


def test_postprocess_errors() -> None:
    raw = {"expression": np.zeros((2, 3), np.float32), "au": np.zeros((2, 2), np.float32)}
    with pytest.raises(KeyError, match="returned no 'va' output"):
        postprocess(SPEC, raw)
    wide = {**raw, "va": np.zeros((2, 2)), "au_intensity": np.zeros((2, 2)), "attribute": np.zeros((2, 1))}
    wide["expression"] = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="'expression' has 4 outputs but 3 labels"):
        postprocess(SPEC, wide)
    with pytest.raises(TypeError, match="dict of task outputs"):
        postprocess(SPEC, torch.zeros(2, 3))
    with pytest.raises(TypeError, match="WeightSpec"):
        postprocess(object(), raw)
