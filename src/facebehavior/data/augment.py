"""Batched face-crop augmentation for training expression/AU/VA models.

Designed for the crossing the default model has to make: it is trained on FER2013 (48×48,
grayscale, loosely cropped web faces) and applied to aligned crops of real video (colour, larger,
sharper, often darker or partially occluded). Every operation runs on a whole ``(B, C, H, W)``
batch at once with per-sample random parameters (no per-image Python loop), on CPU or GPU.

Pipeline of :class:`FaceAugment` (each stage applied to a random subset of the batch):

1. geometry — one ``affine_grid``/``grid_sample`` per batch combining scale, shift, small rotation and
   horizontal flip, resampling straight to the model's input size (so resizing costs nothing extra);
2. colour → grey — RGB input is turned into luma (ITU-R BT.601) for 1-channel models, or randomly
   desaturated for 3-channel ones (so an RGB model does not rely on colour a grey corpus lacks);
3. resolution loss — down- then up-sampling, mimicking small faces in video;
4. blur — per-sample Gaussian blur (grouped separable convolution);
5. illumination — brightness, contrast and gamma per sample;
6. occlusion — one random grey rectangle per selected sample (hands, glasses, hair);
7. sensor noise — additive Gaussian noise.

Horizontal flips mirror the face, so any per-side target must be swapped with it: use
:func:`lr_swap_index` on the AU label names (e.g. ``AU12L``/``AU12R``) and apply
:meth:`FaceAugment.flip_targets` (or pass ``au_swap`` to :meth:`FaceAugment.__call__`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["FaceAugment", "AugmentConfig", "lr_swap_index", "to_float", "rgb_to_luma"]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, the weights FER2013's grey pixels were made with


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` → float32 ``[0, 1]``; float input is returned as float32 unchanged."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 or floating point, got {x.dtype}")
    return x.float()


def rgb_to_luma(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB → ``(B, 1, H, W)`` luma (BT.601). 1-channel input is returned as is."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    w = x.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


_SIDE = re.compile(r"^(?P<stem>.*?)(?P<sep>[_\-\s]?)(?P<side>left|right|l|r)$", re.IGNORECASE)


def lr_swap_index(names: Sequence[str]) -> list[int]:
    """Permutation that swaps left/right label columns under a horizontal flip.

    Names ending in ``L``/``R``, ``_l``/``_r`` or ``_left``/``_right`` (any case) are paired with the
    name that has the other side and the same stem; every other column maps to itself. The result
    ``idx`` satisfies ``flipped_targets = targets[..., idx]``.

    Example:
        ``lr_swap_index(["AU01", "AU12L", "AU12R"]) == [0, 2, 1]``.

    Raises:
        ValueError: a side-specific name has no partner (the flip would be silently wrong).
    """
    names = list(names)
    pos = {n: i for i, n in enumerate(names)}
    idx = list(range(len(names)))
    for i, n in enumerate(names):
        m = _SIDE.match(n)
        # A trailing side marker counts when separated ("AU12_l", "brow_left") or glued to a number
        # ("AU12L"); a plain word that merely ends in "l"/"r" ("pupil", "AU_lower") is not a side.
        if m is None or not m.group("stem") or not (m.group("sep") or m.group("stem")[-1].isdigit()):
            continue
        side = m.group("side")
        other = {"l": "r", "r": "l", "left": "right", "right": "left"}[side.lower()]
        if side.isupper():
            other = other.upper()
        elif side[0].isupper():
            other = other.capitalize()
        partner = m.group("stem") + m.group("sep") + other
        if partner not in pos:
            raise ValueError(f"label {n!r} is side-specific but {partner!r} is not among the labels")
        idx[i] = pos[partner]
    return idx


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of :class:`FaceAugment` (defaults tuned for FER2013 → video crops).

    Attributes:
        out_size: side of the output crop in pixels.
        out_channels: 1 (luma) or 3 (RGB).
        scale: range of the zoom factor (>1 zooms in, i.e. a tighter crop).
        shift: maximal translation as a fraction of the crop side.
        rotate_deg: maximal absolute in-plane rotation in degrees.
        p_flip: probability of a horizontal flip.
        p_grey: for 3-channel output, probability of full desaturation.
        p_lowres: probability of down/up-sampling; ``lowres_min`` is the smallest relative size.
        p_blur: probability of Gaussian blur with sigma in ``blur_sigma`` (pixels of the output).
        p_light: probability of brightness/contrast/gamma changes with the given ranges.
        p_occlude: probability of one occluding rectangle of side ``occlude_frac`` × crop side.
        p_noise: probability of Gaussian noise with std in ``noise_std`` (on the [0, 1] scale).
    """

    out_size: int = 64
    out_channels: int = 1
    scale: tuple[float, float] = (0.9, 1.15)
    shift: float = 0.08
    rotate_deg: float = 12.0
    p_flip: float = 0.5
    p_grey: float = 0.3
    p_lowres: float = 0.2
    lowres_min: float = 0.5
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    p_light: float = 0.8
    brightness: float = 0.25
    contrast: tuple[float, float] = (0.6, 1.4)
    gamma: tuple[float, float] = (0.7, 1.5)
    p_occlude: float = 0.25
    occlude_frac: tuple[float, float] = (0.15, 0.4)
    p_noise: float = 0.2
    noise_std: tuple[float, float] = (0.01, 0.05)


class FaceAugment:
    """Random augmentation of a batch of face crops.

    Args:
        config: ranges and probabilities; ``AugmentConfig()`` by default.
        generator: optional ``torch.Generator`` for reproducible draws.

    Call with ``images`` ``(B, C, H, W)`` uint8 ``[0, 255]`` or float ``[0, 1]`` (C = 1 or 3, any
    H, W) and get ``(images_out, flipped)``: float32 ``(B, out_channels, out_size, out_size)`` in
    ``[0, 1]`` and a bool ``(B,)`` mask of the mirrored samples. Pass ``au`` ``(B, A)`` and
    ``au_swap`` (from :func:`lr_swap_index`) to also get the AU targets with left/right columns
    swapped on mirrored samples: ``(images_out, flipped, au_out)``.
    """

    def __init__(self, config: AugmentConfig | None = None, generator: torch.Generator | None = None) -> None:
        self.cfg = config or AugmentConfig()
        if self.cfg.out_channels not in (1, 3):
            raise ValueError(f"out_channels must be 1 or 3, got {self.cfg.out_channels}")
        self.gen = generator

    # -- random helpers ------------------------------------------------------------------------
    def _u(self, n: int, lo: float, hi: float, device: torch.device) -> torch.Tensor:
        return torch.rand(n, generator=self.gen).to(device) * (hi - lo) + lo

    def _coin(self, n: int, p: float, device: torch.device) -> torch.Tensor:
        return (torch.rand(n, generator=self.gen) < p).to(device)

    # -- stages ----------------------------------------------------------------------------------
    def geometry(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale/shift/rotate/flip and resample to ``out_size``; returns ``(images, flipped)``."""
        b, dev, c = x.shape[0], x.device, self.cfg
        s = self._u(b, *c.scale, dev)
        ang = self._u(b, -c.rotate_deg, c.rotate_deg, dev) * (math.pi / 180.0)
        tx = self._u(b, -c.shift, c.shift, dev) * 2.0  # normalised coords span 2
        ty = self._u(b, -c.shift, c.shift, dev) * 2.0
        flip = self._coin(b, c.p_flip, dev)
        sx = torch.where(flip, -1.0, 1.0).to(x.dtype)
        cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
        # theta maps output coords to input coords: flip ∘ rotate ∘ zoom, then shift.
        theta = torch.stack(
            [torch.stack([cos * sx, -sin, tx], dim=1), torch.stack([sin * sx, cos, ty], dim=1)], dim=1
        ).to(x.dtype)
        grid = F.affine_grid(theta, [b, x.shape[1], c.out_size, c.out_size], align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return out, flip

    def colour(self, x: torch.Tensor) -> torch.Tensor:
        """Match the output channel count; randomly desaturate 3-channel output."""
        if self.cfg.out_channels == 1:
            return rgb_to_luma(x)
        if x.shape[1] == 1:
            return x.expand(-1, 3, -1, -1).contiguous()
        grey = self._coin(x.shape[0], self.cfg.p_grey, x.device).view(-1, 1, 1, 1)
        return torch.where(grey, rgb_to_luma(x).expand_as(x), x)

    def lowres(self, x: torch.Tensor) -> torch.Tensor:
        """Down- then up-sample a random subset (one factor per batch, drawn per call)."""
        sel = self._coin(x.shape[0], self.cfg.p_lowres, x.device)
        if not bool(sel.any()):
            return x
        f = float(self._u(1, self.cfg.lowres_min, 1.0, torch.device("cpu")))
        size = max(8, int(round(x.shape[-1] * f)))
        small = F.interpolate(x[sel], size=(size, size), mode="area")
        x = x.clone()
        x[sel] = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample Gaussian blur on a random subset (sigma 0 elsewhere)."""
        b, ch, h, w = x.shape
        sel = self._coin(b, self.cfg.p_blur, x.device)
        if not bool(sel.any()):
            return x
        sig = self._u(b, *self.cfg.blur_sigma, x.device) * sel
        r = max(1, int(math.ceil(3 * self.cfg.blur_sigma[1])))
        t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
        k = torch.exp(-0.5 * (t.view(1, -1) / sig.clamp(min=1e-3).view(-1, 1)) ** 2)
        k = torch.where(sel.view(-1, 1), k, (t == 0).to(x.dtype).view(1, -1))
        k = (k / k.sum(dim=1, keepdim=True)).repeat_interleave(ch, dim=0)  # (B*C, K)
        y = F.pad(x.reshape(1, b * ch, h, w), (r, r, r, r), mode="reflect")
        y = F.conv2d(y, k.view(b * ch, 1, 1, -1), groups=b * ch)
        y = F.conv2d(y, k.view(b * ch, 1, -1, 1), groups=b * ch)
        return y.view(b, ch, h, w)

    def light(self, x: torch.Tensor) -> torch.Tensor:
        """Brightness, contrast (around the per-image mean) and gamma on a random subset."""
        b, dev, c = x.shape[0], x.device, self.cfg
        sel = self._coin(b, c.p_light, dev).view(-1, 1, 1, 1)
        gamma = torch.exp(self._u(b, math.log(c.gamma[0]), math.log(c.gamma[1]), dev)).view(-1, 1, 1, 1)
        con = self._u(b, *c.contrast, dev).view(-1, 1, 1, 1)
        bri = self._u(b, -c.brightness, c.brightness, dev).view(-1, 1, 1, 1)
        y = x.clamp(0, 1) ** gamma
        mean = y.mean(dim=(1, 2, 3), keepdim=True)
        y = ((y - mean) * con + mean + bri).clamp(0, 1)
        return torch.where(sel, y, x)

    def occlude(self, x: torch.Tensor) -> torch.Tensor:
        """Paint one grey rectangle (random size, position and level) on a random subset."""
        b, _, h, w = x.shape
        dev, c = x.device, self.cfg
        sel = self._coin(b, c.p_occlude, dev)
        if not bool(sel.any()):
            return x
        rh = self._u(b, *c.occlude_frac, dev) * h
        rw = self._u(b, *c.occlude_frac, dev) * w
        cy = self._u(b, 0, 1, dev) * h
        cx = self._u(b, 0, 1, dev) * w
        level = self._u(b, 0, 1, dev).view(-1, 1, 1, 1)
        yy = torch.arange(h, device=dev, dtype=x.dtype).view(1, h, 1) + 0.5
        xx = torch.arange(w, device=dev, dtype=x.dtype).view(1, 1, w) + 0.5
        m = (
            ((yy - cy.view(-1, 1, 1)).abs() <= rh.view(-1, 1, 1) / 2)
            & ((xx - cx.view(-1, 1, 1)).abs() <= rw.view(-1, 1, 1) / 2)
            & sel.view(-1, 1, 1)
        ).unsqueeze(1)
        return torch.where(m, level.expand_as(x), x)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """Additive Gaussian noise on a random subset."""
        b, dev = x.shape[0], x.device
        std = self._u(b, *self.cfg.noise_std, dev) * self._coin(b, self.cfg.p_noise, dev)
        n = torch.randn(x.shape, generator=self.gen).to(dev, x.dtype)
        return (x + n * std.view(-1, 1, 1, 1)).clamp(0, 1)

    @staticmethod
    def flip_targets(targets: torch.Tensor, flipped: torch.Tensor, swap: Sequence[int]) -> torch.Tensor:
        """Swap left/right columns of ``targets`` ``(B, A)`` on the rows where ``flipped`` is True."""
        idx = torch.as_tensor(list(swap), device=targets.device, dtype=torch.long)
        if idx.numel() != targets.shape[-1]:
            raise ValueError(f"swap index has {idx.numel()} entries for {targets.shape[-1]} target columns")
        return torch.where(flipped.view(-1, 1), targets[:, idx], targets)

    def __call__(
        self,
        images: torch.Tensor,
        au: torch.Tensor | None = None,
        au_swap: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, ...]:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (B, 1|3, H, W), got {tuple(images.shape)}")
        x = to_float(images)
        x, flipped = self.geometry(x)
        x = self.colour(x)
        x = self.lowres(x)
        x = self.blur(x)
        x = self.light(x)
        x = self.occlude(x)
        x = self.noise(x)
        if au is None:
            return x, flipped
        if au_swap is None:
            raise ValueError("au_swap is required with au targets (use lr_swap_index on the AU names)")
        return x, flipped, self.flip_targets(au, flipped, au_swap)
