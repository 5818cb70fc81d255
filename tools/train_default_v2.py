"""Train the default model v2 (``fbn_fusion``): appearance + Face Landmarker blendshapes, calibrated AUs.

Two stages, one command (see ``src/facebehavior/weights/fbn_fusion.md`` for the data and figures):

1. **Fine-tune** (``--time-budget`` seconds, wall clock): the v1 default model's trunk and heads
   (``--init``) plus the expression fusion MLP, on FER2013 Training (FER+ vote distributions) and
   the training subjects of a second corpus of real photos (a face-crop cache from
   ``facebehavior prepare``; labels mixed with face-api teacher probabilities from
   ``tools/faceapi_teacher.py``). The appearance AU head learns soft targets: relatedness table A
   (Du et al. 2014) under the expression target, blended with the FACS-mapped blendshapes of the
   face (``fusion.ARKIT_TO_FACS``). Blendshapes are dropped for 25 % of the faces so the
   appearance-only fallback stays trained. Checkpoint selection: FER+ PublicTest accuracy plus
   the second corpus' validation subjects' balanced accuracy (the sum).
2. **Calibrate** (seconds): with everything else frozen, each AU's logistic unit
   (``BlendshapeFusion.au_scale/au_bias/au_bs``) is fitted to weak occurrence labels on FER+
   PublicTest faces (held out from stage 1's training): an AU is present when it is prototypical
   (table A weight 1; weight ≥ 0.5 for AUs without a prototypical emotion) of the face's confident
   emotion, absent when the face is neutral or the emotion is unrelated to it. AU45 (blink) is
   fitted to the blendshape teacher (eyes closed: mean eyeBlink > 0.5). The arousal baseline is the
   mean activation of neutral faces.

Blendshapes for the training faces are precomputed files (``--fer-blendshapes``,
``--extra-blendshapes``): ``bs`` (N, 52) rows aligned with ``fer2013.npz`` rows / the cache table
rows, NaN where no face was found.

    python tools/train_default_v2.py --extra-train CACHE_TRAIN --extra-val CACHE_VAL \
        --fer-blendshapes fer_bs.npz --extra-blendshapes-train bs_train.npz \
        --extra-blendshapes-val bs_val.npz --teacher teacher_train.npz --out runs/default_v2
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facebehavior import schema
from facebehavior.data.augment import AugmentConfig, FaceAugment
from facebehavior.data.cache import FaceCache
from facebehavior.data.datasets.fer2013 import FER2013, default_root
from facebehavior.data.weak_targets import blended_au_targets, weak_au_labels
from facebehavior.models.default import (
    APPEARANCE_AUS,
    DEFAULT_AUS,
    DEFAULT_WEIGHTS,
    V1_WEIGHTS,
    default_model_path,
    load_default_model,
)
from facebehavior.models.fusion import BlendshapeFusion, fbn_fusion_mobile
from facebehavior.models.transforms import normalise, preprocess
from facebehavior.models.weights import InputSpec, WeightSpec, save_checkpoint

logger = logging.getLogger("train_default_v2")
E8 = schema.EXPRESSIONS_8
NEUTRAL = E8.index("neutral")
APP_AUS = APPEARANCE_AUS
FUSED_AUS = DEFAULT_AUS
# The exported input spec; training and evaluation read their input through it too
# (``models.transforms``: ``preprocess`` for evaluation, the Analyzer's own path, and ``normalise``
# after the augmentation).
SPEC = WeightSpec(
    "fbn_fusion",
    "fbn_fusion_mobile",
    input=InputSpec(
        size=48, channels=1, mean=(0.5,), std=(0.5,), template="fer2013", features=("blendshapes",)
    ),
)
BS = schema.BLENDSHAPE_NAMES
# Mirroring a face swaps its Left/Right blendshapes.
BS_FLIP = torch.tensor(
    [
        BS.index(n.replace("Left", "Right"))
        if "Left" in n
        else BS.index(n.replace("Right", "Left"))
        if "Right" in n
        else i
        for i, n in enumerate(BS)
    ]
)


def load_appearance(model: BlendshapeFusion, state: dict[str, torch.Tensor]) -> None:
    """Load a v1 default model's weights into the appearance network (its VA head is not used)."""
    res = model.appearance.load_state_dict(state, strict=False)
    if res.missing_keys or any(not k.startswith("heads.heads.va.") for k in res.unexpected_keys):
        raise RuntimeError(f"checkpoint does not match the appearance network: {res}")


def soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * logits.log_softmax(-1)).sum(-1).mean()


def masked_bce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * mask
    return loss.sum() / mask.sum().clamp(min=1)


class Corpus:
    """Training/validation faces as tensors: images, expression targets, blendshapes, AU targets."""

    def __init__(self, images: np.ndarray, dist: np.ndarray, label: np.ndarray, bs: np.ndarray) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images))  # (N, H, W, C) uint8
        self.dist = torch.from_numpy(dist.astype(np.float32))  # (N, 8)
        self.label = label  # (N,) int, -1 = none
        self.bs = torch.from_numpy(bs.astype(np.float32))  # (N, 52), NaN = missing
        au, au_mask = blended_au_targets(dist, bs, APP_AUS)
        self.au = torch.from_numpy(au)
        self.au_mask = torch.from_numpy(au_mask.astype(np.float32))

    def __len__(self) -> int:
        return len(self.images)


def load_fer(root: Path, split: str, bs_all: np.ndarray) -> Corpus:
    ad = FER2013(root, exclude_test_duplicates=True, drop_single_votes=True, majority="microsoft")
    t = ad.load(split)
    rows = np.array([int(s.split(":")[-1]) for s in t.image], np.int64)
    dist = np.asarray(t.expression_dist, np.float64)
    keep = dist.sum(1) > 0
    dist = dist[keep] / dist[keep].sum(1, keepdims=True)
    return Corpus(ad.image_array(t)[keep], dist, np.asarray(t.expression)[keep], bs_all[rows[keep]])


def load_extra(cache_dir: Path, bs_file: Path, teacher: Path | None, label_weight: float) -> Corpus:
    c = FaceCache(cache_dir)
    y = np.asarray(c.table.expression)
    keep = y >= 0
    items = np.flatnonzero(keep)
    onehot = np.eye(len(E8), dtype=np.float64)[y[keep]]
    dist = onehot
    if teacher is not None:
        t = np.load(teacher)
        pos = {r: i for i, r in enumerate(t["row"])}
        tp = t["probs"][[pos[r] for r in c.found[items]]]
        dist = label_weight * onehot + (1 - label_weight) * tp
    crops = np.stack([c.crop(i) for i in items])
    bs = np.load(bs_file)["bs"][c.found[items]]
    return Corpus(crops, dist, y[keep], bs)


@torch.no_grad()
def appearance_outputs(model: BlendshapeFusion, corpus: Corpus) -> dict[str, torch.Tensor]:
    model.eval()
    outs: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(corpus), 512):
        o = model.appearance(preprocess(corpus.images[i : i + 512], SPEC))
        for k, v in o.items():
            outs.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in outs.items()}


def evaluate(model: BlendshapeFusion, corpus: Corpus) -> dict[str, float]:
    app = appearance_outputs(model, corpus)
    with torch.no_grad():
        fused = model.fuse(app, corpus.bs)["expression"].argmax(1).numpy()
        alone = model.fuse(app, None)["expression"].argmax(1).numpy()
    y = corpus.label
    m = (y >= 0) & (y != E8.index("contempt"))  # the 7 basic classes, as the benchmarks score them
    res = {}
    for name, pred in (("fused", fused), ("appearance", alone)):
        rec = [float((pred[m & (y == c)] == c).mean()) for c in range(len(E8)) if (m & (y == c)).any()]
        res[f"{name}_acc"] = float((pred[m] == y[m]).mean())
        res[f"{name}_bal"] = float(np.mean(rec))
    return res


def hyper_parameters(a: argparse.Namespace) -> dict[str, object]:
    """The run's hyper-parameters (data paths are this machine's; the model card names the data)."""
    skip = {"skip_train", "threads", "eval_every"}
    return {k: v for k, v in vars(a).items() if isinstance(v, (int, float, str, bool)) and k not in skip}


def training_record(a: argparse.Namespace) -> dict[str, object]:
    """What the exported spec stores: stage-1 hyper-parameters and the selected evaluation."""
    rec_path = a.out / "training.json"
    if not rec_path.is_file():
        return {"hyper_parameters": hyper_parameters(a)}
    rec = json.loads(rec_path.read_text())
    hist = json.loads((a.out / "history.json").read_text())
    rec["selected"] = max(hist, key=lambda h: h["score"])
    return rec


def train(a: argparse.Namespace) -> None:
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    fer_bs = np.load(a.fer_blendshapes)["bs"]
    fer = load_fer(a.fer_root, "train", fer_bs)
    fer_val = load_fer(a.fer_root, "val", fer_bs)
    extra = load_extra(a.extra_train, a.extra_blendshapes_train, a.teacher, a.label_weight)
    extra_val = load_extra(a.extra_val, a.extra_blendshapes_val, None, 1.0)
    logger.info(
        "FER train %d, extra train %d, FER val %d, extra val %d",
        len(fer),
        len(extra),
        len(fer_val),
        len(extra_val),
    )

    v1, v1_spec = load_default_model(a.init or default_model_path(V1_WEIGHTS))
    model = fbn_fusion_mobile(aus=FUSED_AUS)
    load_appearance(model, v1.state_dict())
    logger.info("initialised the appearance network from %s", a.init or "the packaged v1 default")
    size = SPEC.input.size
    if v1_spec.input.size != size:
        raise ValueError(f"--init takes {v1_spec.input.size} px input; the fusion model's spec says {size}")
    aug = FaceAugment(
        AugmentConfig(out_size=size, out_channels=1, scale=(0.9, 1.1), shift=0.06, rotate_deg=10.0,
                      p_flip=0.5, p_lowres=0.2, lowres_min=0.5, p_blur=0.15, p_light=0.5, p_occlude=0.1,
                      p_noise=0.1),
        generator=g,
    )  # fmt: skip
    params = [p for n, p in model.named_parameters() if not n.startswith("au_")]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)
    n_fer = a.batch - a.extra_per_batch
    # The extra corpus is 90 % neutral/happy: draw its faces with weight 1/sqrt(class count) so
    # the rare classes are seen more often without repeating a handful of faces endlessly.
    counts = np.bincount(extra.label, minlength=len(E8)).astype(np.float64)
    extra_weight = torch.from_numpy(1.0 / np.sqrt(np.maximum(counts[extra.label], 1.0)))
    steps_est = a.max_steps
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "training.json").write_text(json.dumps({"hyper_parameters": hyper_parameters(a)}, indent=1))
    best, start, step = -1.0, time.time(), 0
    history = []
    while True:
        perm_f = torch.randperm(len(fer), generator=g)
        for i in range(0, len(perm_f) - n_fer + 1, n_fer):
            frac = min(1.0, (time.time() - start) / a.time_budget)
            lr = a.lr * (0.5 * (1 + math.cos(math.pi * frac))) * min(1.0, (step + 1) / 200)
            for grp in opt.param_groups:
                grp["lr"] = lr
            model.train()
            fi = perm_f[i : i + n_fer]
            ei = torch.multinomial(extra_weight, a.extra_per_batch, replacement=True, generator=g)
            xs, flips = [], []
            for corpus, idx in ((fer, fi), (extra, ei)):
                x, fl = aug(corpus.images[idx].permute(0, 3, 1, 2))
                xs.append(x)
                flips.append(fl)
            x = normalise(torch.cat(xs), SPEC)
            flip = torch.cat(flips)
            dist = torch.cat([fer.dist[fi], extra.dist[ei]])
            au = torch.cat([fer.au[fi], extra.au[ei]])
            au_m = torch.cat([fer.au_mask[fi], extra.au_mask[ei]])
            bs = torch.cat([fer.bs[fi], extra.bs[ei]])
            bs = torch.where(flip[:, None], bs[:, BS_FLIP], bs)
            drop = torch.rand(len(bs), generator=g) < a.bs_dropout
            bs[drop] = float("nan")
            app = model.appearance(x)
            fused = model.fuse(app, bs)
            loss = (
                soft_ce(fused["expression"], dist)
                + a.app_weight * soft_ce(app["expression"], dist)
                + a.au_weight * masked_bce(app["au"], au, au_m)
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % 100 == 0:
                logger.info("step %d  lr %.2e  loss %.4f  %.0f s", step, lr, loss.item(), time.time() - start)
            done = time.time() - start >= a.time_budget or step >= steps_est
            if step % a.eval_every == 0 or done:
                r_fer = evaluate(model, fer_val)
                r_ext = evaluate(model, extra_val)
                score = r_fer["fused_acc"] + r_ext["fused_bal"]
                history.append({"step": step, "fer_val": r_fer, "extra_val": r_ext, "score": score})
                logger.info("eval step %d: FER val %s | extra val %s", step, r_fer, r_ext)
                if score > best:
                    best = score
                    torch.save(model.state_dict(), a.out / "best.pt")
                (a.out / "history.json").write_text(json.dumps(history, indent=1))
            if done:
                return
    # unreachable


def calibrate(a: argparse.Namespace) -> BlendshapeFusion:
    model = fbn_fusion_mobile(aus=FUSED_AUS)
    sd = torch.load(a.out / "best.pt", weights_only=True)
    model.load_state_dict({k: v for k, v in sd.items() if not k.startswith("appearance.heads.heads.va.")})
    model.eval()
    # Calibrate on the blendshapes inference will see (tools/blendshape_features.py), if given.
    fer_bs = np.load(a.calib_blendshapes or a.fer_blendshapes)["bs"]
    cal = load_fer(a.fer_root, "val", fer_bs)
    app = appearance_outputs(model, cal)
    y, m = weak_au_labels(cal.label, cal.bs.numpy(), FUSED_AUS)
    y_t, m_t = torch.from_numpy(y), torch.from_numpy(m.astype(np.float32))
    # Half of the faces without blendshapes in the fit, so the fallback is calibrated as well.
    bs_fit = cal.bs.clone()
    bs_fit[torch.arange(len(bs_fit)) % 4 == 0] = float("nan")
    au_params = [model.au_scale, model.au_bias, model.au_bs]
    lbfgs = torch.optim.LBFGS(au_params, lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        lbfgs.zero_grad()
        out = model.fuse(app, bs_fit)["au"]
        loss = masked_bce(out, y_t, m_t) + 1e-3 * (model.au_bs**2).sum()
        loss.backward()
        return loss

    lbfgs.step(closure)
    uncal = (m_t.sum(0) == 0).nonzero().flatten()
    with torch.no_grad():
        model.au_scale[uncal] = 1.0
        model.au_bias[uncal] = 0.0
        model.au_bs[uncal] = 0.0
        fused = model.fuse(app, cal.bs)
        act = fused["au"][:, model.arousal_aus].sigmoid().mean(1)
        neutral = torch.from_numpy(cal.label == NEUTRAL)
        model.arousal_baseline.fill_(float(act[neutral].mean()))
    logger.info(
        "calibrated %d AUs; uncalibrated: %s", len(FUSED_AUS) - len(uncal), [FUSED_AUS[i] for i in uncal]
    )
    return model


def export(a: argparse.Namespace, model: BlendshapeFusion) -> None:
    spec = WeightSpec(
        name="fbn_fusion",
        architecture="fbn_fusion_mobile",
        arch_kwargs={"aus": list(FUSED_AUS)},
        input=SPEC.input,
        tasks={
            "expression": E8,
            "au": tuple(schema.get_au(x).code for x in FUSED_AUS),
            "va": ("valence", "arousal"),
        },
        licence="Apache-2.0",
        source="facebehavior tools/train_default_v2.py (fine-tuned from fbn_mobile_ferplus)",
        extra={"training": training_record(a)},
    )
    sd = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    sha = save_checkpoint(sd, spec, a.out / DEFAULT_WEIGHTS)
    logger.info("wrote %s (sha256 %s)", a.out / DEFAULT_WEIGHTS, sha)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fer-root", type=Path, default=default_root())
    ap.add_argument("--fer-blendshapes", type=Path, required=True)
    ap.add_argument(
        "--calib-blendshapes",
        type=Path,
        help="blendshapes of the FER2013 PublicTest rows for the calibration stage, computed as the "
        "Analyzer computes them (tools/blendshape_features.py --fer val); default: --fer-blendshapes",
    )
    ap.add_argument("--extra-train", type=Path, required=True)
    ap.add_argument("--extra-val", type=Path, required=True)
    ap.add_argument("--extra-blendshapes-train", type=Path, required=True)
    ap.add_argument("--extra-blendshapes-val", type=Path, required=True)
    ap.add_argument("--teacher", type=Path, help="face-api probabilities for --extra-train")
    ap.add_argument(
        "--label-weight", type=float, default=0.6, help="weight of the corpus label vs the teacher"
    )
    ap.add_argument("--init", type=Path, help=f"v1 checkpoint (default: the packaged {V1_WEIGHTS})")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--time-budget", type=float, default=1800.0)
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--extra-per-batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--bs-dropout", type=float, default=0.25)
    ap.add_argument("--app-weight", type=float, default=0.5)
    ap.add_argument("--au-weight", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-train", action="store_true", help="calibrate and export an existing best.pt")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(a.threads)
    if not a.skip_train:
        train(a)
    export(a, calibrate(a))


if __name__ == "__main__":
    main()
