"""Training stack: masked multi-task steps, multi-set loading, resume, export, recipes, CLI."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("lightning")

from facebehavior.data.labels import LabelTable  # noqa: E402
from facebehavior.train.config import ConfigError, Recipe, load_recipe, parse_recipe  # noqa: E402
from facebehavior.train.data import LabelledImages, SetData, task_set_loader  # noqa: E402
from facebehavior.train.module import FaceBehaviorModule  # noqa: E402

AUS = (1, 2, 4, 6, 12)


def _recipe(root=".", **over) -> Recipe:
    data = {
        "name": "t",
        "seed": 1,
        "model": {"name": "facebehaviornet_mobile_tiny", "kwargs": {"num_expressions": 8, "aus": list(AUS)}},
        "input": {"size": 32, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3, "template": "arcface"},
        "data": {"batch_size": 12, "sets": {"expr": {"dataset": "ferplus", "root": str(root)}}},
        "augment": {"target": None},
        "optim": {"name": "sgd", "lr": 0.05},
    }
    for k, v in over.items():
        node = data
        *path, last = k.split("__")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = v
    return parse_recipe(data)


def _batch(n=12, expr_mask=1.0, au_mask=1.0, va_mask=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 8, (n,), generator=g)
    return {
        "image": torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
        "expression": y,
        "expression_dist": torch.nn.functional.one_hot(y, 8).float(),
        "expression_mask": torch.full((n,), expr_mask),
        "expression_hard": torch.full((n,), expr_mask),
        "au": torch.randint(0, 2, (n, len(AUS)), generator=g).float(),
        "au_mask": torch.full((n, len(AUS)), au_mask),
        "va": torch.rand(n, 2, generator=g) * 2 - 1,
        "va_mask": torch.full((n,), va_mask),
        "set_index": torch.zeros(n, dtype=torch.int64),
    }


def _head_grads(module, batch):
    module.zero_grad()
    module.train()
    out = module(module.preprocess(batch["image"], train=False))
    module.compute_losses(out, batch)["loss"].backward()
    heads = module.model.heads.heads
    lin = {"expression": heads["expression"], "au": heads["au"], "va": heads["va"].fc}
    return {t: float(layer.weight.grad.abs().sum()) for t, layer in lin.items()}


def test_masked_tasks_get_no_gradient():
    torch.manual_seed(0)
    m = FaceBehaviorModule(_recipe())
    g = _head_grads(m, _batch(au_mask=0.0))
    assert g["au"] == 0.0 and g["expression"] > 0 and g["va"] > 0
    g = _head_grads(m, _batch(expr_mask=0.0, va_mask=0.0))
    assert g["expression"] == 0.0 and g["va"] == 0.0 and g["au"] > 0
    # coupling switched on: AU head learns from expression-only batches through distribution matching
    mc = FaceBehaviorModule(_recipe(loss__coupling__distribution_matching=1.0))
    mc.load_state_dict(m.state_dict())
    assert _head_grads(mc, _batch(au_mask=0.0))["au"] > 0


def test_channels_last_gives_the_same_losses_and_gradients():
    torch.manual_seed(0)
    ref = FaceBehaviorModule(_recipe())
    cl = FaceBehaviorModule(_recipe(trainer__channels_last=True))
    cl.load_state_dict(ref.state_dict())
    conv = next(m for m in cl.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = _batch()
    torch.manual_seed(1)  # the same dropout masks for both
    ga = _head_grads(ref, batch)
    torch.manual_seed(1)
    gb = _head_grads(cl, batch)
    for k in ga:
        assert gb[k] == pytest.approx(ga[k], rel=1e-4)


def test_masked_labels_are_ignored():
    m = FaceBehaviorModule(_recipe())
    m.eval()
    b = _batch()
    b["au_mask"][:6] = 0
    b["va_mask"][:6] = 0
    b["expression_mask"][:6] = 0
    out = m(m.preprocess(b["image"], train=False))
    ref = m.compute_losses(out, b)
    b2 = copy.deepcopy(b)
    b2["au"][:6] = 1 - b2["au"][:6]
    b2["va"][:6] = -b2["va"][:6]
    b2["expression_dist"][:6] = torch.roll(b2["expression_dist"][:6], 1, dims=1)
    got = m.compute_losses(out, b2)
    for k in ("expression", "au", "va", "loss"):
        assert torch.equal(ref[k], got[k]), k
    # and the expression term is exactly the soft cross-entropy over the labelled half
    logp = torch.log_softmax(out["expression"][6:], 1)
    expect = -(b["expression_dist"][6:] * logp).sum(1).mean()
    torch.testing.assert_close(ref["expression"], expect)


class _ArrayAdapter:
    """Pixels held in memory (what ``DatasetAdapter.image_array`` serves)."""

    def __init__(self, images):
        self.images = images

    def image_array(self, table):
        return self.images


def _table(n, kind):
    rng = np.random.default_rng(n)
    kw = {}
    expression = np.full(n, -1)
    if kind == "expr":
        expression = rng.integers(0, 8, n)
    if kind == "au":
        kw = dict(aus=(1, 4, 12, 26), au_occurrence=rng.integers(0, 2, (n, 4)).astype(np.float32),
                  au_mask=np.ones((n, 4), bool))  # fmt: skip
    if kind == "va":
        kw = dict(va=rng.uniform(-1, 1, (n, 2)).astype(np.float32), va_mask=np.ones(n, bool))
    return LabelTable(corpus=kind, split="train", root=".", image=np.array([""] * n, object),
                      subject=np.array([""] * n, object), video=np.array([""] * n, object),
                      frame=np.full(n, -1), expression=expression, **kw)  # fmt: skip


def test_task_sets_concatenate_with_their_own_masks():
    sizes = {"va": 40, "au": 24, "expr": 10}
    sets = {}
    for i, (k, n) in enumerate(sizes.items()):
        imgs = np.full((n, 40, 40, 3), i * 50, np.uint8)
        ds = LabelledImages(SetData(_ArrayAdapter(imgs), _table(n, k)), AUS, 3, 32, set_index=i)
        sets[k] = (ds, _recipe().data.sets["expr"])
    loader = task_set_loader(sets, total_batch_size=15)
    batches = list(loader)
    assert len(batches) == 5
    b = batches[0]
    assert b["image"].shape == (15, 3, 32, 32) and b["image"].dtype == torch.uint8
    assert b["set_index"].tolist() == [0] * 8 + [1] * 5 + [2] * 2
    assert b["va_mask"].tolist() == [1] * 8 + [0] * 7
    assert b["expression_mask"].tolist() == [0] * 13 + [1] * 2
    # the AU set annotates AUs 1, 4, 12 of the model's (1, 2, 4, 6, 12); AU2 and AU6 stay masked
    assert b["au_mask"][8:13].tolist() == [[1, 0, 1, 0, 1]] * 5 and b["au_mask"][:8].sum() == 0
    assert (b["image"][:8] == 0).all() and (b["image"][8:13] == 50).all()


def _fer_tree(root, n_train=36, n_val=12, n_test=12):
    rng = np.random.default_rng(0)
    usage = ["Training"] * n_train + ["PublicTest"] * n_val + ["PrivateTest"] * n_test
    lines = ["emotion,pixels,Usage"]
    votes = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"]
    for i, u in enumerate(usage):
        c = i % 3
        img = rng.integers(0, 60, (48, 48)) + 60 * c  # learnable: brightness encodes the class
        lines.append(f"{c},{' '.join(map(str, img.ravel()))},{u}")
        v = [0] * 10
        v[c], v[(c + 1) % 8] = 8, 2
        votes.append(f"{u},fer{i:07d}.png," + ",".join(map(str, v)))
    root.mkdir(parents=True)
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    (root / "fer2013new.csv").write_text("\n".join(votes) + "\n")
    return root


def _fer_recipe(tmp_path, out, **over):
    root = tmp_path / "fer" if (tmp_path / "fer").exists() else _fer_tree(tmp_path / "fer")
    base = {
        "output_dir": str(tmp_path / out),
        "model__kwargs": {"num_expressions": 8, "aus": [], "va": False, "in_channels": 1},
        "input": {"size": 48, "channels": 1, "mean": [0.5], "std": [0.5], "template": "arcface"},
        "data__val": [{"dataset": "ferplus", "root": str(root), "split": "val"}],
        "augment": {"target": "facebehavior.data.augment:FaceAugment", "config": {"p_noise": 0.5}},
        "optim": {"name": "adamw", "lr": 0.01, "schedule": "onecycle"},
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "log_every_n_steps": 1},
    }
    base.update(over)
    return _recipe(root, **base)


def test_resume_continues_identically(tmp_path):
    import lightning as L

    from facebehavior.models.weights import load_weights
    from facebehavior.train.runner import fit

    class Interrupt(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            trainer.should_stop = True  # the job dies after epoch 0 (its last.ckpt is written)

    straight = fit(_fer_recipe(tmp_path, "a"))
    fit(_fer_recipe(tmp_path, "b"), callbacks=[Interrupt()])
    resumed = fit(_fer_recipe(tmp_path, "b"), resume="last")
    ma, spec = load_weights(straight)
    mb, _ = load_weights(resumed)
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # training moved the weights away from the initialisation
    init = FaceBehaviorModule(_fer_recipe(tmp_path, "c")).model.state_dict()
    assert not torch.equal(init["heads.heads.expression.weight"], sa["heads.heads.expression.weight"])
    assert spec.input.size == 48 and spec.input.channels == 1 and spec.input.template == "arcface"
    assert spec.tasks["expression"][7] == "contempt" and spec.architecture == "facebehaviornet_mobile_tiny"


def test_exported_checkpoint_loads_and_matches(tmp_path):
    from facebehavior.models.weights import load_weights
    from facebehavior.train.evaluate import compute_metrics, evaluate_checkpoint
    from facebehavior.train.runner import export_model

    m = FaceBehaviorModule(_recipe(model__kwargs={"num_expressions": 8, "aus": list(AUS)}))
    path = tmp_path / "m.safetensors"
    export_model(m, path, {"note": 1})
    model, spec = load_weights(path)
    assert spec.tasks["au"] == tuple(f"AU{a:02d}" for a in AUS) and spec.extra["note"] == 1
    x = torch.rand(2, 3, 32, 32)
    m.eval()
    with torch.no_grad():
        a, b = m.model(x), model(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    # evaluation metrics agree with scikit-learn on the same predictions
    sk = pytest.importorskip("sklearn.metrics")
    cfg = _fer_recipe(tmp_path, "e").data.val[0]
    path1 = tmp_path / "g.safetensors"
    export_model(FaceBehaviorModule(_fer_recipe(tmp_path, "g")), path1)
    res, pred = evaluate_checkpoint(path1, cfg)
    y, p = pred["expression"], pred["pred_expression"].argmax(1)
    assert res["expression"]["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
    assert res["expression"]["macro_f1"] == pytest.approx(
        sk.f1_score(y, p, average="macro", labels=list(range(8)), zero_division=0)
    )
    f1_macro = sk.f1_score(y, p, average="macro", labels=list(range(8)), zero_division=0)
    assert res["expression"]["score_0.67f1_0.33acc"] == pytest.approx(
        0.67 * f1_macro + 0.33 * sk.accuracy_score(y, p)
    )
    assert compute_metrics(pred, load_weights(path1)[1])["expression"]["n"] == 12
    cm = np.asarray(res["expression"]["confusion_matrix"])
    np.testing.assert_array_equal(cm, sk.confusion_matrix(y, p, labels=list(range(8))))
    # the CLI prints the figures and writes the report files
    from facebehavior.cli import main

    code = main(["evaluate", str(path1), "--dataset", "ferplus", "--root", cfg.root, "--split", "val",
                 "--out", str(tmp_path / "rep")])  # fmt: skip
    assert code == 0
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert names == {"metrics.json", "expression_per_class.csv", "confusion_matrix.png"}
    missing = str(tmp_path / "nope.safetensors")
    assert main(["evaluate", missing, "--dataset", "ferplus", "--root", cfg.root]) == 2


def test_validation_scores_soft_au_targets():
    from facebehavior.train.module import summary_metrics

    cat = {
        "pred_au": torch.tensor([[3.0, -3.0], [-3.0, 3.0], [3.0, 3.0]]),
        "au": torch.tensor([[0.8, 0.1], [0.3, 0.6], [0.7, 0.2]]),  # soft weak labels
        "au_mask": torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]),
    }
    # binarised truth [[1,0],[0,1],[1,-]] vs predictions [[1,0],[0,1],[1,1]]: F1 = 1 for both AUs
    assert summary_metrics(cat, 0)["au/f1_mean"] == pytest.approx(1.0)


def test_au_weighting_arl_uses_rates():
    m = FaceBehaviorModule(_recipe(loss__au__weighting="arl"), au_rates=np.array([0.5, 0.25, 0.25, 0.1, 0.4]))
    inv = 1 / np.array([0.5, 0.25, 0.25, 0.1, 0.4])
    # w ∝ 1/r_i with an average of 1 (the authors' normalisation; eq. 8's sum-to-1 is 5× smaller).
    np.testing.assert_allclose(m.au_weights.numpy(), 5 * inv / inv.sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="occurrence rates"):
        FaceBehaviorModule(_recipe(loss__au__weighting="arl"))


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"recipe.optim: unknown key\(s\) \['lrr'\]"):
        _recipe(optim={"lrr": 1})
    with pytest.raises(ConfigError, match=r"recipe.trainer.max_epochs: expected an integer"):
        _recipe(trainer={"max_epochs": "ten"})
    with pytest.raises(ConfigError, match="input.mean needs 1 value"):
        _recipe(input={"channels": 1, "mean": [0.5, 0.5], "std": [0.5]})
    bad = tmp_path / "r.yaml"
    bad.write_text("name: x\nmodel: {name: m}\ndata: {sets: {a: {dataset: d, root: ${NOT_SET_ANYWHERE}}}}\n")
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        load_recipe(bad)


@pytest.mark.parametrize(
    "path", sorted(__import__("pathlib").Path(__file__).parent.parent.glob("recipes/*.yaml"))
)
def test_shipped_recipes_parse(path, monkeypatch):
    monkeypatch.setenv("FACEBEHAVIOR_DATA", "/data")
    monkeypatch.setenv("FACEBEHAVIOR_CACHE", "/data/cache")
    r = load_recipe(path)
    from facebehavior.models import list_models

    assert r.model.name in list_models()


def test_exported_recipe_keeps_env_placeholders(tmp_path, monkeypatch):
    """Exported checkpoints carry the recipe as written, not this machine's expanded data paths."""
    from facebehavior.models.weights import load_weights
    from facebehavior.train.runner import export_model

    monkeypatch.setenv("FACEBEHAVIOR_DATA", str(tmp_path / "private" / "data"))
    r = load_recipe(Path(__file__).parent.parent / "recipes" / "ferplus_small.yaml")
    assert r.data.sets["expr"].root == str(tmp_path / "private" / "data" / "fer2013")
    r.model.kwargs.update(width=0.25)
    path = tmp_path / "m.safetensors"
    export_model(FaceBehaviorModule(r), path)
    stored = load_weights(path)[1].extra["recipe"]
    assert stored["data"]["sets"]["expr"]["root"] == "${FACEBEHAVIOR_DATA}/fer2013"
    assert "private" not in path.read_bytes()[:65536].decode("latin-1")


def test_cli_reports_bad_recipe(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("name: x\nmodel: {name: m}\nbogus: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "facebehavior.cli", "train", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "unknown key(s) ['bogus']" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_inference_does_not_import_lightning():
    code = (
        "import sys, facebehavior; from facebehavior.models.weights import load_weights; "
        "import facebehavior.train.config, facebehavior.train.evaluate; print('lightning' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_compute_metrics_au_and_va_against_sklearn():
    """The AU report (masked, soft targets at >= 0.5) and VA CCC, recomputed independently."""
    from types import SimpleNamespace

    from facebehavior.train.evaluate import compute_metrics

    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    n = 40
    target = rng.random((n, 3)).astype(np.float32)
    prob = rng.random((n, 3)).astype(np.float32)
    mask = np.ones((n, 3), np.float32)
    mask[:10, 1] = 0  # AU2 unannotated on 10 rows
    mask[:, 2] = 0  # AU4 never annotated: left out of the report
    va = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    pred_va = (va + rng.normal(0, 0.3, (n, 2))).astype(np.float32)
    pred = {"au": target, "pred_au": prob, "au_mask": mask, "va": va, "pred_va": pred_va,
            "va_mask": np.ones(n, np.float32)}  # fmt: skip
    spec = SimpleNamespace(tasks={"au": ("AU01", "AU02", "AU04"), "va": ("valence", "arousal")})
    res = compute_metrics(pred, spec)
    assert set(res["au"]["per_au_f1"]) == {"AU01", "AU02"}
    f1s, tp_tn, total = [], 0, 0
    for j, name in enumerate(("AU01", "AU02")):
        m = mask[:, j] > 0
        y, p = target[m, j] >= 0.5, prob[m, j] >= 0.5
        f1s.append(sk.f1_score(y, p, zero_division=0))
        assert res["au"]["per_au_f1"][name] == pytest.approx(f1s[-1])
        assert res["au"]["per_au_accuracy"][name] == pytest.approx(sk.accuracy_score(y, p))
        tp_tn, total = tp_tn + int((y == p).sum()), total + int(m.sum())
    assert res["au"]["f1_mean"] == pytest.approx(np.mean(f1s))
    assert res["au"]["abaw_score"] == pytest.approx(0.5 * np.mean(f1s) + 0.5 * tp_tn / total)
    v, pv = va[:, 0].astype(np.float64), pred_va[:, 0].astype(np.float64)
    ccc = 2 * np.cov(v, pv, bias=True)[0, 1] / (v.var() + pv.var() + (v.mean() - pv.mean()) ** 2)
    assert res["va"]["valence"]["ccc"] == pytest.approx(ccc, rel=1e-5)


def test_recipe_bookkeeping_is_not_a_key_and_parsing_does_not_mutate_its_input(monkeypatch):
    monkeypatch.setenv("FACEBEHAVIOR_DATA", "/data")
    data = yaml.safe_load((Path(__file__).parent.parent / "recipes" / "ferplus_small.yaml").read_text())
    data.pop("output_dir", None)
    data["name"] = "r"
    before = copy.deepcopy(data)
    r = parse_recipe(data)
    assert data == before  # the caller's data is untouched
    assert r.output_dir == str(Path("runs") / "r")  # derived default, filled after validation
    assert r.to_dict(as_written=True) == before and "written" not in r.to_dict()
    assert Recipe(name="r") == Recipe(name="r", written={"x": 1})  # not compared
    assert Recipe().written is None and Recipe(name="a").to_dict(as_written=True)["name"] == "a"
    with pytest.raises(ConfigError, match="unknown key"):
        parse_recipe({**before, "written": {}})
