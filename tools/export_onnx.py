"""Export the shipped networks to ONNX for the torch-free CPU path (``facebehavior.backends``).

For each packaged safetensors file the analysis runs (BlazeFace short/full, FaceMesh, Face Mesh V2,
Blendshape V2, and the affect models ``fbn_fusion`` / ``fbn_mobile_ferplus``) this builds the
PyTorch reference network, loads the weights, exports it with torch's TorchScript ONNX exporter
(opset 17, dynamic batch axis, fixed input/output names) and writes ``<name>.onnx`` next to the
safetensors file. The graph carries its provenance as ONNX metadata (source file and its sha256,
torch version, opset), and the model card ``<name>.md`` gets an "ONNX export" section with the
export's sha256 and the measured largest difference to the PyTorch module on the fixture inputs.

The export is deterministic: the same weights and torch version give the same bytes (checked by
exporting twice). Run::

    python tools/export_onnx.py            # all
    python tools/export_onnx.py facemesh   # some
    python tools/export_onnx.py --check    # verify the shipped files are what the tool writes
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "facebehavior" / "weights"
OPSET = 17


@dataclass(frozen=True)
class Export:
    """One network to export: how to build it and what its graph looks like."""

    name: str
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[int], tuple[torch.Tensor, ...]]  # example inputs for a batch of n
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]


def _converted(module: str, cls: str, source: tuple[str, str]) -> Callable[[], torch.nn.Module]:
    """Build ``module.cls`` and load the packaged weights named by the ``ConvertedWeights`` at
    ``source`` (module, attribute)."""

    def build() -> torch.nn.Module:
        import importlib

        from facebehavior.backends import load_converted

        mod = importlib.import_module(module)
        return load_converted(
            getattr(mod, cls)(), None, getattr(importlib.import_module(source[0]), source[1])
        )

    return build


class _Affect(torch.nn.Module):
    """An affect model with its dict output flattened in ``keys`` order (ONNX outputs are positional)."""

    def __init__(self, model: torch.nn.Module, keys: tuple[str, ...], features: bool) -> None:
        super().__init__()
        self.model, self.keys, self.features = model, keys, features

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*xs)
        return tuple(out[k] for k in self.keys)


def _affect(name: str) -> Export:
    from facebehavior.models.weights import read_spec

    spec = read_spec(WEIGHTS / f"{name}.safetensors")
    keys = tuple(sorted(spec.tasks))
    features = tuple(spec.input.features)
    c, s = spec.input.channels, spec.input.size

    def build() -> torch.nn.Module:
        from facebehavior.models.weights import load_weights

        model, _ = load_weights(WEIGHTS / f"{name}.safetensors")
        return _Affect(model.eval(), keys, bool(features))

    def inputs(n: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, c, s, s, generator=g)
        if not features:
            return (x,)
        b = torch.rand(n, 52, generator=g)
        b[0] = float("nan")  # a face without blendshapes: the graph must keep the NaN branch
        return (x, b)

    return Export(name, build, inputs, ("x", *features), keys)


def _image(size: int) -> Callable[[int], tuple[torch.Tensor, ...]]:
    def inputs(n: int) -> tuple[torch.Tensor, ...]:
        return (torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)),)

    return inputs


def exports() -> list[Export]:
    return [
        Export(
            "blazeface_short",
            _blazeface("blazeface_short"),
            _image(128),
            ("x",),
            ("raw",),
        ),
        Export("blazeface_full", _blazeface("blazeface_full"), _image(192), ("x",), ("raw",)),
        Export(
            "facemesh",
            _converted(
                "facebehavior.face.landmarks._facemesh_net",
                "FaceMeshNet",
                ("facebehavior.face.landmarks.facemesh", "_SOURCE"),
            ),
            _image(192),
            ("x",),
            ("mesh", "presence_logit"),
        ),
        Export(
            "facemesh_v2",
            _converted(
                "facebehavior.face.landmarks._facemesh_v2_net",
                "FaceMeshV2Net",
                ("facebehavior.face.landmarks._facemesh_v2_net", "_SOURCE"),
            ),
            _image(256),
            ("x",),
            ("mesh", "presence_logit", "tongue_logit"),
        ),
        Export(
            "blendshapes_v2",
            _converted(
                "facebehavior.face.landmarks._blendshapes_net",
                "BlendshapeNet",
                ("facebehavior.face.landmarks._blendshapes_net", "_SOURCE"),
            ),
            lambda n: (torch.rand(n, 146, 2, generator=torch.Generator().manual_seed(0)) * 400,),
            ("points",),
            ("scores",),
        ),
        _affect("fbn_fusion"),
        _affect("fbn_mobile_ferplus"),
    ]


def _blazeface(name: str) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        from facebehavior.backends import ConvertedWeights, load_converted
        from facebehavior.face.detect._blazeface_net import BlazeFaceFullNet, BlazeFaceShortNet

        net = BlazeFaceShortNet() if name == "blazeface_short" else BlazeFaceFullNet()
        src = ConvertedWeights(f"{name}.safetensors", name, "BlazeFace", "tools/convert_mediapipe.py")
        return load_converted(net, None, src)

    return build


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export(e: Export) -> bytes:
    """The ONNX bytes of ``e`` with provenance metadata."""
    import onnx

    from facebehavior.backends import export_onnx

    net = e.build().eval()
    with torch.no_grad():
        raw = export_onnx(net, inputs=e.inputs(2), input_names=e.input_names, output_names=e.output_names)
    model = onnx.load_from_string(raw)
    src = WEIGHTS / f"{e.name}.safetensors"
    meta = {
        "facebehavior.source": src.name,
        "facebehavior.source_sha256": sha256(src.read_bytes()),
        "facebehavior.exporter": (
            f"tools/export_onnx.py, torch {torch.__version__.split('+')[0]}, opset {OPSET}"
        ),
    }
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    model.doc_string = f"facebehavior {e.name}: exported from {src.name}"
    return model.SerializeToString()


def max_difference(e: Export, data: bytes, n: int = 4) -> dict[str, float]:
    """Largest absolute difference per output between onnxruntime and the PyTorch module."""
    from facebehavior.backends import OnnxNet

    net = e.build().eval()
    xs = e.inputs(n)
    with torch.no_grad():
        ref = net(*xs)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = OnnxNet(data, threads=1)(*(x.numpy() for x in xs))
    got = got if isinstance(got, tuple) else (got,)
    return {
        name: float(np.nanmax(np.abs(g - r.numpy()))) if np.isfinite(r.numpy()).any() else 0.0
        for name, g, r in zip(e.output_names, got, ref, strict=True)
    }


CARD_HEADING = "## ONNX export"


def update_card(e: Export, data: bytes, diff: dict[str, float]) -> None:
    card = WEIGHTS / f"{e.name}.md"
    text = card.read_text() if card.exists() else f"# {e.name}\n"
    text = re.sub(rf"\n{CARD_HEADING}\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip() + "\n"
    diffs = ", ".join(f"{k} {v:.2g}" for k, v in diff.items())
    text += (
        f"\n{CARD_HEADING}\n\n"
        f"- **file**: `{e.name}.onnx` (what the CPU analysis runs by default, without torch; "
        "`facebehavior.backends.resolve_backend`)\n"
        f"- **onnx sha256**: `{sha256(data)}`\n"
        f"- **made by**: `python tools/export_onnx.py {e.name}` from `{e.name}.safetensors` "
        f"(sha256 in the graph's metadata), torch {torch.__version__.split('+')[0]} TorchScript "
        f"exporter, opset {OPSET}, dynamic batch axis; inputs {', '.join(e.input_names)}, outputs "
        f"{', '.join(e.output_names)}; deterministic (two exports give the same bytes)\n"
        f"- **largest |onnxruntime - PyTorch|** on 4 random inputs: {diffs} "
        "(`tests/test_onnx_exports.py` checks the fixture inputs)\n"
    )
    card.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="networks to export (default: all)")
    p.add_argument("--check", action="store_true", help="only verify the shipped .onnx files")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    todo = [e for e in exports() if not args.names or e.name in args.names]
    unknown = set(args.names) - {e.name for e in exports()}
    if unknown:
        p.error(f"unknown names {sorted(unknown)}; valid: {[e.name for e in exports()]}")
    bad = 0
    for e in todo:
        data = export(e)
        if export(e) != data:
            print(f"{e.name}: the export is not deterministic", file=sys.stderr)
            return 1
        path = WEIGHTS / f"{e.name}.onnx"
        if args.check:
            same = path.exists() and path.read_bytes() == data
            bad += not same
            print(f"{e.name}: {'ok' if same else 'differs from a fresh export'}")
            continue
        diff = max_difference(e, data)
        path.write_bytes(data)
        update_card(e, data, diff)
        print(f"{e.name}: {len(data) / 1e6:.2f} MB sha256 {sha256(data)[:12]}… max diff {diff}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
