"""``facebehavior evaluate`` on tiny corpora written in each adapter's official layout.

Metric tests use an *oracle* model: every image of a corpus is a constant grey level that names
its row, and the model maps the grey level it is fed to predictions fixed in advance, so the
expected figures are computed here from those predictions with scikit-learn or by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facebehavior.models.weights import InputSpec, WeightSpec
from facebehavior.schema import AUS_17, EXPRESSIONS_8
from facebehavior.train import evaluate
from facebehavior.train.config import SetConfig

sk = pytest.importorskip("sklearn.metrics")

INP = InputSpec(size=16, channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, template="arcface")
CLIP_INP = InputSpec(size=32, channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, template="arcface")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def grey(path: Path, value: int, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


class Oracle(torch.nn.Module):
    """Returns ``outputs[task][k]`` for an image of grey level ``levels[k]`` (nearest level)."""

    def __init__(self, levels: list[int], outputs: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.levels = torch.tensor(levels, dtype=torch.float32)
        self.outputs = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in outputs.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        level = (x.mean(dim=(1, 2, 3)) * 0.5 + 0.5) * 255.0
        k = (level[:, None] - self.levels[None]).abs().argmin(1)
        return {name: v[k] for name, v in self.outputs.items()}


def use(monkeypatch, model: torch.nn.Module, spec: WeightSpec) -> None:
    monkeypatch.setattr(evaluate, "load_weights", lambda path: (model, spec))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


# ------------------------------------------------------------------------------------------ BP4D
BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)


def bp4d_corpus(root: Path, rng: np.random.Generator) -> dict[str, int]:
    """Two subjects × one task × 8 frames; AU_OCC with uncoded (9) entries, AU_INT for AU06/AU12.

    Returns image path → grey level.
    """
    levels: dict[str, int] = {}
    for s in ("F001", "M001"):
        occ = rng.integers(0, 2, (8, len(BP4D_AUS)))
        occ[rng.random(occ.shape) < 0.1] = 9
        occ[0, 0], occ[1, 0] = 1, 0  # both classes of AU01 in each subject
        rows = [f"{f + 1}," + ",".join(map(str, occ[f])) for f in range(8)]
        write(
            root / "AUCoding/AU_OCC" / f"{s}_T1.csv",
            "Frame," + ",".join(map(str, BP4D_AUS)) + "\n" + "\n".join(rows) + "\n",
        )
        for au in (6, 12):
            ints = rng.integers(0, 6, 8)
            write(
                root / f"AUCoding/AU_INT/AU{au:02d}" / f"{s}_T1_AU{au:02d}.csv",
                "".join(f"{f + 1},{v}\n" for f, v in enumerate(ints)),
            )
        for f in range(8):
            rel = f"Sequences/{s}/T1/{f + 1:04d}.jpg"
            levels[rel] = 20 + 12 * len(levels)
            grey(root / rel, levels[rel])
    return levels


def test_bp4d_au_occurrence_auc_and_intensity_against_sklearn(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    levels = bp4d_corpus(tmp_path / "BP4D", rng)
    names = list(levels)
    aus = ("AU01", "AU06", "AU12", "AU25")  # AU25 is not coded in BP4D: left out of the report
    prob = rng.random((len(names), 4))
    inten = rng.uniform(-0.7, 5.6, (len(names), 4))  # clipped to [0, 5] before scoring
    spec = WeightSpec("o", "x", input=INP, tasks={"au": aus})
    use(monkeypatch, Oracle(list(levels.values()), {"au": logit(prob), "au_intensity": inten}), spec)
    cfg = SetConfig(dataset="bp4d", root=str(tmp_path / "BP4D"), split="all")
    res, pred = evaluate.evaluate_checkpoint("unused", cfg, detect=False)
    table_rows = [names.index(x) for x in pred_images(cfg)]
    np.testing.assert_allclose(pred["pred_au"], prob[table_rows], atol=1e-5)
    assert set(res["au"]["per_au_f1"]) == {"AU01", "AU06", "AU12"}
    f1s, aucs = [], []
    for j, code in enumerate(aus[:3]):
        m = pred["au_mask"][:, j] > 0
        y, p = pred["au"][m, j], prob[table_rows][m, j]
        f1s.append(sk.f1_score(y, p >= 0.5, zero_division=0))
        aucs.append(sk.roc_auc_score(y, p))
        assert res["au"]["per_au_f1"][code] == pytest.approx(f1s[-1])
        assert res["au"]["per_au_auc"][code] == pytest.approx(aucs[-1])
        assert res["au"]["per_au_accuracy"][code] == pytest.approx(sk.accuracy_score(y, p >= 0.5))
    assert res["au"]["f1_mean"] == pytest.approx(np.mean(f1s))
    assert res["au"]["auc_mean"] == pytest.approx(np.mean(aucs))
    # Intensity: AU06 and AU12 only (BP4D's AU_INT files here); ICC(3,1) for 2 raters written out as
    # the two-way ANOVA of the (n, 2) matrix, on predictions clipped to [0, 5] and rounded.
    ir = res["au_intensity"]
    assert set(ir["per_au_icc"]) == {"AU06", "AU12"}
    for j, code in ((1, "AU06"), (2, "AU12")):
        m = pred["au_intensity_mask"][:, j] > 0
        y = pred["au_intensity"][m, j].astype(np.float64)
        raw = np.clip(inten[table_rows][m, j], 0, 5)
        for p, key in ((np.round(raw), ""), (raw, "_raw")):
            assert ir[f"per_au_icc{key}"][code] == pytest.approx(icc_anova(y, p), rel=1e-5)
            assert ir[f"per_au_mae{key}"][code] == pytest.approx(np.mean(np.abs(y - p)), rel=1e-5)
    assert ir["icc_mean"] == pytest.approx(np.mean(list(ir["per_au_icc"].values())))
    assert res["faces"]["rows"] == 16 and res["faces"]["excluded"] == 0


def pred_images(cfg: SetConfig) -> list[str]:
    from facebehavior.data.datasets import create_dataset

    return create_dataset(cfg.dataset, cfg.root, **cfg.options).load(cfg.split).image.tolist()


def icc_anova(x: np.ndarray, y: np.ndarray) -> float:
    """ICC(3,1) from the two-way ANOVA mean squares, as pingouin's ``intraclass_corr`` computes it."""
    data = np.stack([x, y], 1)
    n, k = data.shape
    gm = data.mean()
    ms_rows = k * ((data.mean(1) - gm) ** 2).sum() / (n - 1)
    ss_cols = n * ((data.mean(0) - gm) ** 2).sum()
    ms_err = (((data - gm) ** 2).sum() - ms_rows * (n - 1) - ss_cols) / ((n - 1) * (k - 1))
    return float((ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err))


def test_median_filter_per_video(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    levels = bp4d_corpus(tmp_path / "BP4D", rng)
    names = list(levels)
    prob = rng.random((len(names), 1))
    spec = WeightSpec("o", "x", input=INP, tasks={"au": ("AU01",)})
    use(monkeypatch, Oracle(list(levels.values()), {"au": logit(prob)}), spec)
    cfg = SetConfig(dataset="bp4d", root=str(tmp_path / "BP4D"), split="all")
    res, pred = evaluate.evaluate_checkpoint("unused", cfg, detect=False, median=3)
    table = [names.index(x) for x in pred_images(cfg)]
    p = prob[table, 0]
    # Hand-computed: per subject (8 frames in order), a centred window of 3 shrinking to 1 at the ends.
    want = np.empty(16)
    for s in range(2):
        seq = p[8 * s : 8 * s + 8]
        want[8 * s : 8 * s + 8] = [seq[0]] + [np.median(seq[i - 1 : i + 2]) for i in range(1, 7)] + [seq[7]]
    np.testing.assert_allclose(pred["pred_au"][:, 0], want, atol=1e-5)
    assert res["dataset"]["median"] == 3
    with pytest.raises(ValueError, match="odd"):
        evaluate.evaluate_checkpoint("unused", cfg, detect=False, median=4)


# ---------------------------------------------------------------------------------------- CelebA
def test_celeba_attribute_accuracy(tmp_path, monkeypatch):
    from facebehavior.models.fatauva import ATTRIBUTES

    names = [
        "5_o_Clock_Shadow",
        "Arched_Eyebrows",
        "Attractive",
        "Bushy_Eyebrows",
        "Eyeglasses",
        "Male",
        "Mouth_Slightly_Open",
        "Narrow_Eyes",
        "No_Beard",
        "Smiling",
        "Young",
    ]
    rng = np.random.default_rng(2)
    n = 12
    vals = rng.choice([-1, 1], (n, len(names)))
    files = [f"{i + 1:06d}.jpg" for i in range(n)]
    body = "".join(f"{f} " + " ".join(map(str, v)) + "\n" for f, v in zip(files, vals, strict=True))
    write(tmp_path / "Anno/list_attr_celeba.txt", f"{n}\n" + " ".join(names) + "\n" + body)
    write(tmp_path / "Eval/list_eval_partition.txt", "".join(f"{f} 2\n" for f in files))
    write(tmp_path / "Anno/identity_CelebA.txt", "".join(f"{f} {i}\n" for i, f in enumerate(files)))
    levels = [30 + 15 * i for i in range(n)]
    for f, v in zip(files, levels, strict=True):
        grey(tmp_path / "Img/img_align_celeba" / f, v)
    scores = rng.normal(0, 2, (n, len(ATTRIBUTES)))
    spec = WeightSpec("o", "x", input=INP, tasks={"attribute": ATTRIBUTES})
    use(monkeypatch, Oracle(levels, {"attribute": scores}), spec)
    res, pred = evaluate.evaluate_checkpoint(
        "unused", SetConfig(dataset="celeba", root=str(tmp_path), split="test"), detect=False
    )
    a = res["attribute"]
    assert a["n"] == n
    for j, name in enumerate(ATTRIBUTES):
        y = pred["attribute"][:, j]
        assert a["per_attribute_accuracy"][name] == pytest.approx(sk.accuracy_score(y, scores[:, j] > 0))
        if 0 < y.sum() < n:
            assert a["per_attribute_auc"][name] == pytest.approx(sk.roc_auc_score(y, scores[:, j]))
    assert a["accuracy_mean"] == pytest.approx(np.mean(list(a["per_attribute_accuracy"].values())))


# --------------------------------------------------------------------------------- RAF-DB compound
def test_rafdb_compound_scores_with_and_without_rejection(tmp_path, monkeypatch):
    from facebehavior.compound import COMPOUND_MIN_PROB, compound_scores
    from facebehavior.relatedness import RAFDB_COMPOUND_11

    rng = np.random.default_rng(3)
    n = 14
    labels = rng.integers(0, 11, n)
    files = [f"test_{i + 1:04d}.jpg" for i in range(n)]
    write(
        tmp_path / "compound/EmoLabel/list_patition_label.txt",
        "".join(f"{f} {c + 1}\n" for f, c in zip(files, labels, strict=True)),
    )
    levels = [30 + 14 * i for i in range(n)]
    for f, v in zip(files, levels, strict=True):
        grey(tmp_path / "compound/Image/aligned" / f.replace(".jpg", "_aligned.jpg"), v)
    expr = rng.dirichlet(np.ones(8) * 0.5, n)
    # Row 0 by hand: happy + surprised, AUs 1, 2, 12, 25 on, positive valence → happily surprised.
    expr[0] = (
        np.eye(8)[EXPRESSIONS_8.index("happiness")] * 0.5 + np.eye(8)[EXPRESSIONS_8.index("surprise")] * 0.5
    )
    au = rng.random((n, len(AUS_17)))
    au[0] = [0.9 if a in (1, 2, 12, 25) else 0.05 for a in AUS_17]
    va = rng.uniform(-1, 1, (n, 2))
    va[0] = (0.6, 0.5)
    labels[0] = RAFDB_COMPOUND_11.index("happily_surprised")
    write(
        tmp_path / "compound/EmoLabel/list_patition_label.txt",
        "".join(f"{f} {c + 1}\n" for f, c in zip(files, labels, strict=True)),
    )
    spec = WeightSpec(
        "o",
        "x",
        input=INP,
        tasks={
            "expression": EXPRESSIONS_8,
            "au": tuple(f"AU{a:02d}" for a in AUS_17),
            "va": ("valence", "arousal"),
        },
    )
    use(monkeypatch, Oracle(levels, {"expression": np.log(expr + 1e-9), "au": logit(au), "va": va}), spec)
    cfg = SetConfig(dataset="rafdb_compound", root=str(tmp_path), split="test")
    res, pred = evaluate.evaluate_checkpoint("unused", cfg, detect=False)
    c = res["compound"]
    assert c["n"] == n and c["min_prob"] == COMPOUND_MIN_PROB
    e, a, v = pred["pred_expression"], pred["pred_au"], pred["pred_va"][:, 0]
    closed = compound_scores(a, e, v, aus=AUS_17, emotions=EXPRESSIONS_8).labels
    assert closed[0] == RAFDB_COMPOUND_11.index("happily_surprised")
    assert c["closed_set"]["accuracy"] == pytest.approx(np.mean(closed == labels))
    assert c["closed_set"]["coverage"] == 1.0
    rej = compound_scores(a, e, v, aus=AUS_17, emotions=EXPRESSIONS_8, min_prob=COMPOUND_MIN_PROB).labels
    assert (rej == -1).any() and (rej >= 0).any()
    assert c["with_rejection"]["accuracy"] == pytest.approx(np.mean(rej == labels))  # rejected = wrong
    assert c["with_rejection"]["coverage"] == pytest.approx(np.mean(rej >= 0))
    acc = rej >= 0
    assert c["with_rejection"]["accuracy_accepted"] == pytest.approx(np.mean(rej[acc] == labels[acc]))
    f1 = sk.f1_score(labels, closed, average=None, labels=list(range(11)), zero_division=0)
    assert c["closed_set"]["macro_f1"] == pytest.approx(f1.mean())
    # A model without valence cannot score compound classes: a clear error, no traceback.
    spec2 = WeightSpec("o", "x", input=INP, tasks={"expression": EXPRESSIONS_8})
    use(monkeypatch, Oracle(levels, {"expression": np.log(expr + 1e-9)}), spec2)
    with pytest.raises(ValueError, match="expression, AU and valence"):
        evaluate.evaluate_checkpoint("unused", cfg, detect=False)


# ------------------------------------------------------------------------------- no-face policy
def test_fill_missing_nearest_frame_of_the_same_video():
    from facebehavior.data.labels import LabelTable

    n = 8
    video = np.array(["a", "a", "a", "a", "b", "b", "", ""], object)
    frame = np.array([0, 1, 2, 5, 10, 11, -1, -1])
    t = LabelTable(
        "x",
        "t",
        Path("."),
        image=np.array([f"{i}" for i in range(n)], object),
        subject=np.array([""] * n, object),
        video=video,
        frame=frame,
        expression=np.full(n, -1),
    )
    p = np.arange(n, dtype=np.float32)[:, None]
    p[[1, 3, 4, 5, 7]] = np.nan  # a: frames 1 and 5 lost; b: no face at all; still image 7 lost
    out, src = evaluate.fill_missing({"x": p}, t, "nearest")
    # frame 1 is 1 away from frames 0 and 2: tie → the earlier; frame 5 → frame 2 (the nearest face)
    assert src.tolist() == [0, 0, 2, 2, -1, -1, 6, -1]
    np.testing.assert_array_equal(out["x"][:, 0], [0, 0, 2, 2, np.nan, np.nan, 6, np.nan])
    _, src = evaluate.fill_missing({"x": p}, t, "exclude")
    assert src.tolist() == [0, -1, 2, -1, -1, -1, 6, -1]


def test_clip_windows_hand_values():
    assert evaluate.clip_windows(5, 4, 2) == [(0, 4), (1, 4)]
    assert evaluate.clip_windows(10, 4, 2) == [(0, 4), (2, 4), (4, 4), (6, 4)]
    assert evaluate.clip_windows(11, 4, 2) == [(0, 4), (2, 4), (4, 4), (6, 4), (7, 4)]
    assert evaluate.clip_windows(3, 4, 2) == [(0, 3)] and evaluate.clip_windows(0, 4, 2) == []


# ------------------------------------------------------------------------- clip models (Aff-Wild2)
def affwild2_videos(root: Path, frames: dict[str, int], rng: np.random.Generator) -> dict[str, int]:
    ann = root / "Annotations/VA_Estimation_Challenge/Validation_Set"
    levels: dict[str, int] = {}
    for v, n in frames.items():
        va = rng.uniform(-1, 1, (n, 2))
        write(ann / f"{v}.txt", "valence,arousal\n" + "".join(f"{a:.3f},{b:.3f}\n" for a, b in va))
        for f in range(1, n + 1):
            rel = f"cropped_aligned/{v}/{f:05d}.jpg"
            levels[rel] = 25 + 20 * len(levels)
            grey(root / rel, levels[rel], size=24)
    return levels


def test_clip_model_windows_average_and_short_videos(tmp_path, monkeypatch):
    from facebehavior.models import create_model

    torch.manual_seed(0)
    model = create_model("mt_vgg_gru_tiny", input_size=32).eval()
    spec = WeightSpec(
        "clip",
        "mt_vgg_gru_tiny",
        {"input_size": 32},
        input=CLIP_INP,
        tasks=dict(model.task_labels),
        extra={"recipe": {"data": {"sets": {"va": {"dataset": "affwild2", "sequence_length": 4}}}}},
    )
    use(monkeypatch, model, spec)
    root = tmp_path / "AW2"
    affwild2_videos(root, {"v1": 5, "v2": 2}, np.random.default_rng(4))
    cfg = SetConfig(dataset="affwild2", root=str(root), split="val", options={"tasks": ("va",)})
    # No cache in the recipe: the model learnt whole corpus images, so auto-detection is off.
    res, pred = evaluate.evaluate_checkpoint("unused", cfg)
    assert res["dataset"]["sequence_length"] == 4 and res["dataset"]["stride"] == 2
    assert "no detection" in res["faces"]["source"]
    images = pred_images(cfg)
    x = torch.stack([torch.from_numpy(np.array(Image.open(root / p))).permute(2, 0, 1) for p in images])
    from facebehavior.models.transforms import postprocess, preprocess

    frames = preprocess(x, spec)
    with torch.no_grad():
        w0 = postprocess(spec, model(frames[None, 0:4]))["va"][0]
        w1 = postprocess(spec, model(frames[None, 1:5]))["va"][0]
        short = postprocess(spec, model(frames[None, 5:7]))["va"][0]  # v2 alone (2 < T frames)
    want = np.empty((7, 2), np.float32)
    want[0], want[4] = w0[0], w1[3]
    want[1:4] = (w0[1:4] + w1[0:3]) / 2  # frames in both windows: the mean of the two
    want[5:7] = short  # padding the short video with its last frame changes nothing for a causal GRU
    np.testing.assert_allclose(pred["pred_va"], want, atol=1e-5)
    y = pred["va"][:, 0].astype(np.float64)
    p = want[:, 0].astype(np.float64)
    ccc = 2 * np.cov(y, p, bias=True)[0, 1] / (y.var() + p.var() + (y.mean() - p.mean()) ** 2)
    assert res["va"]["valence"]["ccc"] == pytest.approx(ccc, rel=1e-4)
    # A clip model without a known sequence length is refused with the flag to use.
    spec0 = WeightSpec(
        "clip", "mt_vgg_gru_tiny", {"input_size": 32}, input=CLIP_INP, tasks=dict(model.task_labels)
    )
    use(monkeypatch, model, spec0)
    with pytest.raises(ValueError, match="--sequence-length"):
        evaluate.evaluate_checkpoint("unused", cfg)
    res3, _ = evaluate.evaluate_checkpoint("unused", cfg, sequence_length=3, stride=1)
    assert res3["dataset"]["sequence_length"] == 3


def test_cli_on_a_tiny_clip_checkpoint(tmp_path, capsys):
    """The real path: an exported tiny MT-VGG-GRU checkpoint, the CLI, the table and --json."""
    import json

    from facebehavior.cli import main
    from facebehavior.models import create_model
    from facebehavior.models.weights import save_checkpoint

    model = create_model("mt_vgg_gru_tiny", input_size=32)
    spec = WeightSpec(
        "clip", "mt_vgg_gru_tiny", {"input_size": 32}, input=CLIP_INP, tasks=dict(model.task_labels)
    )
    ckpt = tmp_path / "clip.safetensors"
    save_checkpoint(model.state_dict(), spec, ckpt)
    root = tmp_path / "AW2"
    affwild2_videos(root, {"v1": 6, "v2": 3}, np.random.default_rng(5))
    out = tmp_path / "r.json"
    args = ["evaluate", str(ckpt), "--dataset", "affwild2", "--root", str(root), "--split", "val",
            "--option", "tasks=[va]", "--no-detect", "--sequence-length", "4"]  # fmt: skip
    code = main([*args, "--median", "3", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "valence" in text and "CCC / RMSE / r" in text and "clips of 4 frames, stride 2" in text
    rep = json.loads(out.read_text())
    assert rep["va"]["n"] == 9 and rep["dataset"]["median"] == 3
    # Bad input: one line, exit 2.
    assert main([*args, "--median", "4"]) == 2
    assert main(["evaluate", str(ckpt), "--split", "val"]) == 2


# ------------------------------------------------------------------- detection + alignment
PHOTO = Path(__file__).resolve().parents[1] / "samples" / "face.jpg"
ONE_FACE_CROPS = {"left.jpg": (80, 430, 60, 290), "mid.jpg": (140, 360, 270, 480)}  # y0, y1, x0, x1


def face_manifest(root: Path) -> Path:
    """Crops of samples/face.jpg holding one face each, the whole group photo and a face-less image;
    three rows form a video whose middle frame has no face."""
    root.mkdir(parents=True, exist_ok=True)
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    for name, (y0, y1, x0, x1) in ONE_FACE_CROPS.items():
        Image.fromarray(photo[y0:y1, x0:x1]).save(root / name)
    Image.fromarray(photo).save(root / "group.jpg")
    noise = np.random.default_rng(0).random((96, 128)) * 30 + 100
    Image.fromarray(noise.astype(np.uint8)).convert("RGB").save(root / "blank.png")
    rows = [
        "image,split,subject,video,frame,expression",
        "left.jpg,test,s1,v,0,happiness",
        "blank.png,test,s1,v,1,happiness",
        "mid.jpg,test,s1,v,2,neutral",
        "blank.png,test,s2,,,sadness",
        "group.jpg,test,s3,,,surprise",
    ]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


class Recorder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fed: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.fed.append(x.clone())
        return {"expression": x.flatten(1)[:, :8] * 3.0}


def test_detection_aligns_like_prepare_and_counts_rows_without_a_face(tmp_path, monkeypatch):
    from facebehavior.cli import main
    from facebehavior.data.cache import FaceCache
    from facebehavior.models.transforms import preprocess

    manifest = face_manifest(tmp_path / "corpus")
    inp = InputSpec(size=48, channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, template="arcface_loose")
    spec = WeightSpec("r", "x", input=inp, tasks={"expression": EXPRESSIONS_8})
    model = Recorder()
    use(monkeypatch, model, spec)
    cfg = SetConfig(dataset="manifest", root=str(manifest), split="test")
    res, pred = evaluate.evaluate_checkpoint("unused", cfg)  # no recipe: detection by default
    # The same split through `facebehavior prepare` with the checkpoint's template and size.
    out = tmp_path / "prepared" / "test"
    assert (
        main(
            [
                "prepare",
                "manifest",
                str(manifest),
                "--split",
                "test",
                "-o",
                str(out.parent),
                "--size",
                "48",
                "--template",
                "arcface_loose",
            ]
        )
        == 0
    )
    cache = FaceCache(out)
    assert cache.status.tolist() == [0, 1, 0, 1, 0]  # the blank image has no face
    crops = np.stack([cache.crop(i) for i in range(len(cache))])
    fed = torch.cat(model.fed)
    assert torch.equal(fed, preprocess(crops, spec)), "evaluation input differs from prepare's crops"
    f = res["faces"]
    assert (f["rows"], f["with_face"], f["no_face"], f["filled_from_neighbour"], f["excluded"]) == (
        5,
        3,
        2,
        1,
        1,
    )
    assert f["template"] == "arcface_loose" and f["size"] == 48
    assert pred["source"].tolist() == [0, 0, 2, -1, 4]  # the video's blank frame takes frame 0's
    assert res["expression"]["n"] == 4  # the still blank image is left out, and reported
    # --cache reads the prepared folder: the same predictions
    model.fed.clear()
    res2, pred2 = evaluate.evaluate_checkpoint("unused", SetConfig(cache=str(out)))
    np.testing.assert_array_equal(pred2["pred_expression"], pred["pred_expression"])
    assert res2["faces"]["source"].startswith("prepare cache") and res2["dataset"]["name"] == "manifest"
    # exclude: both blank rows are out
    res3, _ = evaluate.evaluate_checkpoint("unused", SetConfig(cache=str(out)), no_face="exclude")
    assert res3["expression"]["n"] == 3 and res3["faces"]["excluded"] == 2
    # --no-detect squashes whole images instead (what evaluate did before): other input
    model.fed.clear()
    evaluate.evaluate_checkpoint("unused", cfg, detect=False)
    assert torch.cat(model.fed).shape[0] == 5


def test_affwildnet_gets_facemesh_landmarks_in_clips(tmp_path, monkeypatch):
    """AffWildNet's second input: the 68 points of each cached face, normalised to [-1, 1]."""
    from facebehavior.data.cache import FaceCache
    from facebehavior.face.landmarks.indices import MESH_TO_68
    from facebehavior.models import create_model

    manifest = face_manifest(tmp_path / "corpus")
    torch.manual_seed(0)
    model = create_model("affwildnet_tiny").eval()
    inp = InputSpec(size=96, channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, template="arcface")
    spec = WeightSpec("a", "affwildnet_tiny", input=inp, tasks={"va": ("valence", "arousal")})
    seen: list[torch.Tensor] = []
    forward = model.forward

    def spy(clip: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(landmarks.clone())
        return forward(clip, landmarks)

    monkeypatch.setattr(model, "forward", spy)
    use(monkeypatch, model, spec)
    cfg = SetConfig(dataset="manifest", root=str(manifest), split="test")
    res, pred = evaluate.evaluate_checkpoint("unused", cfg, sequence_length=2, save_cache=tmp_path / "c")
    assert res["dataset"]["sequence_length"] == 2 and np.isfinite(pred["pred_va"][pred["scored"]]).all()
    cache = FaceCache(tmp_path / "c")
    mesh = cache.mesh(0)  # left.jpg, the first frame of the video
    want = (np.stack([mesh[list(ix)].mean(0) for ix in MESH_TO_68]) + 0.5) / 96 * 2 - 1
    # one batch of two clips in track order: the still group photo (padded), the video (rows 0 and 2)
    assert [tuple(x.shape[:2]) for x in seen] == [(2, 2)]
    np.testing.assert_allclose(seen[0][1, 0].numpy(), want, atol=1e-5)
    assert (torch.cat(seen).abs() <= 1.2).all()
    with pytest.raises(ValueError, match="68 landmarks"):
        evaluate.evaluate_checkpoint("unused", cfg, sequence_length=2, detect=False)
