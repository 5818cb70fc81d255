"""AU sanity check of the default model: do the AUs it predicts fit the expression shown?

For each FER+ test class (PrivateTest rows whose FER+ majority vote — arg-max over the 10 vote
columns — is that emotion), prints the mean predicted probability of every AU, the AUs ranked by
how much more likely they are on that class than over all test faces (lift), and whether the
prototypical AUs of relatedness table A (Du et al. 2014) rank at the top for their emotion.
Neither FER2013 nor FER+ has AU labels, so this checks consistency, not AU accuracy.

    python benchmarks/au_sanity.py [--weights other.safetensors]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from facebehavior.data.datasets.fer2013 import NPZ_NAME, default_root
from facebehavior.models.default import default_model_path, load_default_model, predict
from facebehavior.relatedness import get_table

FER_NPZ = default_root() / NPZ_NAME  # $FACEBEHAVIOR_FER2013/fer2013.npz
FERPLUS_COLS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", help="checkpoint (default: the packaged default model)")
    ap.add_argument("--fer", type=Path, default=FER_NPZ)
    a = ap.parse_args()
    torch.set_num_threads(1)

    d = np.load(a.fer)
    test = np.flatnonzero(d["usage"] == 2)
    top = d["ferplus_votes"][test].argmax(1)
    model, spec = load_default_model(a.weights or default_model_path())
    au_names = spec.tasks["au"]
    aus = [int(n[2:]) for n in au_names]
    p_au = predict(model, spec, d["images"][test])["au"]
    overall = p_au[top < 8].mean(0)
    table = get_table("A")
    hits = total = 0
    print(f"{'class':10s} {'n':>5s}  mean p(AU) per AU: " + " ".join(f"{n[2:]:>4s}" for n in au_names))
    for c, emo in enumerate(FERPLUS_COLS):
        sel = top == c
        if sel.sum() == 0:
            continue
        m = p_au[sel].mean(0)
        print(f"{emo:10s} {int(sel.sum()):5d}  " + " " * 19 + " ".join(f"{v:4.2f}" for v in m))
    print()
    for c, emo in enumerate(FERPLUS_COLS):
        sel = top == c
        if sel.sum() == 0 or emo not in table.emotions:
            continue
        lift = p_au[sel].mean(0) - overall
        order = [aus[i] for i in np.argsort(-lift)]
        proto = [au for au in table.prototypical(emo) if au in aus]
        k = len(proto)
        ok = [au for au in proto if au in order[: k + 1]]
        hits += len(ok)
        total += k
        print(
            f"{emo:10s} top AUs by lift: {', '.join(f'AU{au}' for au in order[:5])}; "
            f"table A prototypical {proto}: {len(ok)}/{k} among the top {k + 1}"
        )
    print(f"\nprototypical AUs of table A found among their emotion's top (k+1) AUs: {hits}/{total}")


if __name__ == "__main__":
    main()
