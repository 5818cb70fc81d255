"""Package a trained default-model checkpoint as the shipped ``fbn_mobile_ferplus.safetensors``.

Takes the file ``facebehavior train recipes/default_model.yaml`` exported, stores its tensors in
float16 (half the size; they are cast back to float32 on load, which changes FER+ accuracy by less
than 0.1 %), adds the provenance the pipeline and the model card rely on to the ``WeightSpec``
(which signal trained each AU, how the VA targets were derived, the alignment template's origin,
evaluation figures passed with ``--metrics``) and writes it to ``src/facebehavior/weights/``.

    python tools/train_default_finalize.py runs/default_model/fbn_mobile_ferplus.safetensors \
        [--metrics metrics.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from facebehavior.data.weak_targets import DEFAULT_AUS, GEOMETRY_BLEND
from facebehavior.face.geometry import GEOMETRY_AUS
from facebehavior.models.default import DEFAULT_WEIGHTS
from facebehavior.models.weights import load_weights, packaged_weights_dir, read_spec, save_checkpoint
from facebehavior.relatedness import get_table


def au_signals() -> dict[str, str]:
    """AU code → the training signal(s) behind its output."""
    table_a = set(get_table("A").aus)
    out = {}
    for au in DEFAULT_AUS:
        parts = []
        if au in table_a:
            parts.append(
                "FER+ votes through relatedness table A (co-annotation targets + distribution matching)"
            )
        if au in GEOMETRY_AUS:
            share = f"blended at weight {GEOMETRY_BLEND:.1f}" if au in table_a else "only signal"
            parts.append(f"geometric FaceMesh evidence on 4,000 cached FER2013 training faces ({share})")
        out[f"AU{au:02d}"] = "; ".join(parts) if parts else "none"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--metrics", type=Path, help="JSON of evaluation figures to store in the spec")
    ap.add_argument("--out", type=Path, default=packaged_weights_dir() / DEFAULT_WEIGHTS)
    a = ap.parse_args()

    spec = read_spec(a.checkpoint)
    state = load_file(str(a.checkpoint))
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    extra = dict(spec.extra)
    extra.update(
        {
            "au_signals": au_signals(),
            "va_targets": "expectation of Warriner, Kuperman & Brysbaert (2013) emotion-word "
            "valence/arousal under the FER+ vote distribution (facebehavior.data.va_targets); "
            "derived from expression evidence",
            "alignment": "template 'fer2013' = mean MTCNN keypoints of FER2013 training faces "
            "(facebehavior.face.align)",
            "storage": "float16 tensors, cast to float32 on load",
        }
    )
    if a.metrics:
        extra["metrics"] = json.loads(a.metrics.read_text())
    spec = replace(
        spec,
        source="trained in facebehavior with recipes/default_model.yaml on FER2013 images + FER+ votes "
        "(tools/train_default_finalize.py packaged it)",
        extra=extra,
    )
    sha = save_checkpoint(half, spec, a.out)
    model, spec2 = load_weights(a.out)
    with torch.no_grad():
        y = model(torch.zeros(1, spec2.input.channels, spec2.input.size, spec2.input.size))
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB), sha256 {sha}")
    print({k: tuple(v.shape) for k, v in y.items()})


if __name__ == "__main__":
    main()
