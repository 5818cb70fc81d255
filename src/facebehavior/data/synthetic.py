"""Synthetic AU corpora with known AU regions, written in the official BP4D and DISFA layouts.

Real AU corpora are licence-gated, so the training stack is checked on generated faces where the
ground truth of *where* each AU acts is known: every AU owns a region of the face (a left/right
pair or a midline spot, so horizontal flips keep labels valid), and when the AU is on, a striped
"wrinkle" texture appears in its region with a contrast proportional to its intensity. The same
texture is also pasted at random places outside every AU region (distractors), so detecting an AU
means finding the texture *at its place* — what ARL's spatial attention is meant to learn.

The corpora go through the real adapters (``facebehavior.data.datasets``): BP4D as
``AUCoding/AU_OCC`` CSVs + ``Sequences/<subject>/<task>/<frame>.jpg`` for all 41 subjects of the
3-fold lists, DISFA as per-AU ``ActionUnit_Labels`` files + one lossless left-camera video per
subject for all 27. ``region_masks`` gives the true regions for scoring attention maps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "AU_REGIONS",
    "SyntheticFaces",
    "region_masks",
    "write_bp4d",
    "write_disfa",
]

logger = logging.getLogger(__name__)

# Region centres (x, y) in [0, 1] face coordinates; pairs are mirror images (x, 1 − x). The 17 AUs
# sit on a symmetric grid (columns 0.18 / 0.34 / 0.5 / 0.66 / 0.82, rows 0.12 … 0.92 every 0.16,
# roughly brows → chin) so that no two regions of radius 1.5·RADIUS overlap; a corpus of 12 AUs
# leaves the other slots free for distractors.
AU_REGIONS: dict[int, tuple[tuple[float, float], ...]] = {
    1: ((0.34, 0.12), (0.66, 0.12)),
    2: ((0.18, 0.12), (0.82, 0.12)),
    4: ((0.50, 0.28),),
    5: ((0.34, 0.28), (0.66, 0.28)),
    7: ((0.18, 0.28), (0.82, 0.28)),
    6: ((0.18, 0.44), (0.82, 0.44)),
    9: ((0.34, 0.44), (0.66, 0.44)),
    25: ((0.50, 0.44),),
    10: ((0.50, 0.60),),
    12: ((0.34, 0.60), (0.66, 0.60)),
    14: ((0.18, 0.60), (0.82, 0.60)),
    23: ((0.50, 0.76),),
    24: ((0.34, 0.76), (0.66, 0.76)),
    20: ((0.18, 0.76), (0.82, 0.76)),
    17: ((0.50, 0.92),),
    26: ((0.34, 0.92), (0.66, 0.92)),
    15: ((0.18, 0.92), (0.82, 0.92)),
}
RADIUS = 0.05  # texture radius (1 σ of its envelope is 0.5 radius), fraction of the face side


@dataclass(frozen=True)
class SyntheticFaces:
    """Generator of synthetic faces.

    Attributes:
        aus: AU numbers that can be on (each must be in ``AU_REGIONS``).
        size: image side in pixels.
        p_on: probability that an AU is on in a frame.
        distractors: maximum number of textures pasted outside every AU region per frame.
        noise: per-pixel Gaussian noise, std on the [0, 1] scale.
        jitter: per-subject shift of the whole layout, fraction of the side (imperfect alignment).
        contrast: texture amplitude per intensity level, on the [0, 1] pixel scale.
    """

    aus: tuple[int, ...]
    size: int = 200
    p_on: float = 0.35
    distractors: int = 2
    noise: float = 0.03
    jitter: float = 0.02
    contrast: float = 0.08

    def __post_init__(self) -> None:
        bad = [a for a in self.aus if a not in AU_REGIONS]
        if bad:
            raise ValueError(f"no synthetic region for AU(s) {bad}; known: {sorted(AU_REGIONS)}")

    def subject_style(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A subject's skin tone, low-frequency shading and layout shift."""
        s = self.size
        coarse = rng.normal(0.0, 0.04, (1, 6, 6)) + rng.normal(0.0, 0.01, (3, 6, 6))
        # Bilinear upsampling of a 6×6 grid: smooth, face-sized blotches.
        t = np.linspace(0, 5, s)
        i0 = np.clip(t.astype(int), 0, 4)
        w = t - i0
        rows = coarse[:, i0] * (1 - w)[None, :, None] + coarse[:, i0 + 1] * w[None, :, None]
        shade = rows[:, :, i0] * (1 - w)[None, None, :] + rows[:, :, i0 + 1] * w[None, None, :]
        tone = np.array([0.62, 0.50, 0.44]) + rng.normal(0, 0.05, 3)
        return {"tone": tone, "shade": shade.transpose(1, 2, 0), "shift": rng.uniform(-1, 1, 2) * self.jitter}

    def _texture(self, cx: float, cy: float, amplitude: float) -> np.ndarray:
        """Horizontal stripes under a Gaussian envelope centred at (cx, cy) (fractions), (S, S)."""
        s = self.size
        yy, xx = np.mgrid[0:s, 0:s] / s
        r = RADIUS
        env = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.5 * r) ** 2))
        return amplitude * env * np.cos(2 * np.pi * (yy - cy) / r)

    def render(
        self, intensities: np.ndarray, style: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        """One face: ``intensities`` (A,) 0–5 in ``aus`` order → ``(S, S, 3)`` uint8 RGB."""
        s = self.size
        yy, xx = np.mgrid[0:s, 0:s] / s
        face = np.exp(-((((xx - 0.5) / 0.55) ** 2 + ((yy - 0.55) / 0.62) ** 2) ** 2))
        img = style["tone"][None, None, :] * (0.7 + 0.3 * face[..., None]) + style["shade"]
        dx, dy = style["shift"]
        tex = np.zeros((s, s))
        for a, v in zip(self.aus, intensities, strict=True):
            if v > 0:
                for cx, cy in AU_REGIONS[a]:
                    tex += self._texture(cx + dx, cy + dy, self.contrast * v)
        centres = np.array([c for a in self.aus for c in AU_REGIONS[a]])
        for _ in range(int(rng.integers(0, self.distractors + 1))):
            for _try in range(50):
                cx, cy = rng.uniform(0.1, 0.9, 2)
                if np.min(np.hypot(centres[:, 0] - cx, centres[:, 1] - cy)) > 2.5 * RADIUS:
                    tex += self._texture(cx + dx, cy + dy, self.contrast * rng.integers(1, 6))
                    break
        img = img + tex[..., None] + rng.normal(0, self.noise, (s, s, 3))
        return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)

    def sample_intensities(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, A)`` intensities: each AU on with probability ``p_on``, then 1–5 uniformly."""
        on = rng.random((n, len(self.aus))) < self.p_on
        return np.where(on, rng.integers(1, 6, (n, len(self.aus))), 0)


def region_masks(aus: Sequence[int], size: int, radius: float = 1.5 * RADIUS) -> np.ndarray:
    """True AU regions on a ``size × size`` grid covering the face: ``(A, size, size)`` bool.

    Pixel centres are at ``(i + 0.5) / size``; a pixel is in an AU's region when it lies within
    ``radius`` (fraction of the side) of one of the AU's centres. Layout jitter is ignored.
    """
    c = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    out = np.zeros((len(aus), size, size), bool)
    for i, a in enumerate(aus):
        for cx, cy in AU_REGIONS[a]:
            out[i] |= np.hypot(xx - cx, yy - cy) <= radius
    return out


def _subjects(parts: tuple[tuple[str, ...], ...]) -> list[str]:
    return sorted(s for p in parts for s in p)


def write_bp4d(
    root: str | Path,
    *,
    frames: int = 20,
    size: int = 200,
    seed: int = 0,
    subjects: Sequence[str] | None = None,
    **faces: object,
) -> Path:
    """Write a synthetic BP4D (12 AUs, one task ``T1`` per subject) under ``root``.

    Args:
        root: output folder (becomes the BP4D root).
        frames: frames per subject.
        size: image side (the ARL recipes expect 200×200 aligned faces).
        seed: random seed (the corpus is a deterministic function of the arguments).
        subjects: subject ids (default: the 41 of the BP4D fold lists).
        **faces: further ``SyntheticFaces`` fields (``p_on``, ``distractors``, ``noise``, ``jitter``).

    Returns:
        ``root`` as a ``Path``.
    """
    from PIL import Image

    from facebehavior.data.datasets.bp4d import BP4D_PARTS
    from facebehavior.schema import au_subset

    root = Path(root)
    aus = au_subset("bp4d")
    gen = SyntheticFaces(aus=aus, size=size, **faces)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    occ_dir = root / "AUCoding" / "AU_OCC"
    occ_dir.mkdir(parents=True, exist_ok=True)
    header = "Frame," + ",".join(str(a) for a in aus)
    for subject in subjects or _subjects(BP4D_PARTS):
        style = gen.subject_style(rng)
        inten = gen.sample_intensities(frames, rng)
        folder = root / "Sequences" / subject / "T1"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [header]
        for f in range(frames):
            Image.fromarray(gen.render(inten[f], style, rng)).save(folder / f"{f + 1:04d}.jpg", quality=95)
            lines.append(f"{f + 1}," + ",".join(str(int(v > 0)) for v in inten[f]))
        (occ_dir / f"{subject}_T1.csv").write_text("\n".join(lines) + "\n")
    logger.info("synthetic BP4D written to %s", root)
    return root


def write_disfa(
    root: str | Path,
    *,
    frames: int = 20,
    size: int = 200,
    seed: int = 0,
    **faces: object,
) -> Path:
    """Write a synthetic DISFA (12 AUs coded 0–5, all 27 subjects of the fold lists) under ``root``.

    Frames go into one lossless (FFV1) ``Videos_LeftCamera/LeftVideo<SN>_comp.avi`` per subject,
    labels into ``ActionUnit_Labels/<SN>/<SN>_au<N>.txt`` (1-based frame numbers), as shipped.
    Needs PyAV.
    """
    import av

    from facebehavior.data.datasets.disfa import DISFA_AUS, DISFA_PARTS

    root = Path(root)
    gen = SyntheticFaces(aus=DISFA_AUS, size=size, **faces)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    (root / "Videos_LeftCamera").mkdir(parents=True, exist_ok=True)
    for subject in _subjects(DISFA_PARTS):
        style = gen.subject_style(rng)
        inten = gen.sample_intensities(frames, rng)
        label_dir = root / "ActionUnit_Labels" / subject
        label_dir.mkdir(parents=True, exist_ok=True)
        for j, a in enumerate(DISFA_AUS):
            (label_dir / f"{subject}_au{a}.txt").write_text(
                "".join(f"{f + 1},{int(inten[f, j])}\n" for f in range(frames))
            )
        with av.open(str(root / "Videos_LeftCamera" / f"LeftVideo{subject}_comp.avi"), "w") as c:
            st = c.add_stream("ffv1", rate=20)
            st.width = st.height = size
            st.pix_fmt = "yuv444p"
            for f in range(frames):
                frame = av.VideoFrame.from_ndarray(gen.render(inten[f], style, rng), format="rgb24")
                for pkt in st.encode(frame):
                    c.mux(pkt)
            for pkt in st.encode():
                c.mux(pkt)
    logger.info("synthetic DISFA written to %s", root)
    return root
