"""Fully connected CRF over a binary attention map, with mean-field inference unrolled as a
recurrent module (Krähenbühl & Koltun, NIPS 2011; Zheng et al., "Conditional Random Fields as
Recurrent Neural Networks", ICCV 2015), as used by ARL (Shao et al., "Facial Action Unit Detection
Using Attention and Relation Learning", IEEE TAFFC 2019, §3.4) to refine spatial attention.

For one map with ``m = H·W`` pixels, label ``y_j ∈ {0, 1}`` (1 = "attend"), the energy is

    E(y) = Σ_j ψ_u(y_j) + Σ_{j<k} μ(y_j, y_k) · K(j, k)
    ψ_u(y_j) = −log P⁰(y_j),         P⁰(y_j = 1) = v⁰_j (the initial attention)
    K(j, k)  = w1 · exp(−|o_j − o_k|² / 2α² − |f_j − f_k|² / 2β²) + w2 · exp(−|o_j − o_k|² / 2γ²)

with ``o`` the pixel coordinates (in pixels of the attention map) and ``f`` learned per-pixel
features. Inference is exact over **all** pixel pairs: the ``(m, m)`` kernel is built once per
forward pass as a batched dense matrix and each of the mean-field iterations is a batched matrix
product (no Python loop over pixels). Memory is ``O(N·m²)``: 15 MB per map at 44×44 (ARL's
l/4 for l = 176), so ARL with 12 AUs needs ≈ 180 MB per image for the kernel.

For the ARL loss term, ``DenseCRF.energy`` evaluates the energy's expectation under a factorised
distribution ``Q`` (typically the refined attention returned by ``forward``):

    E(Q) = Σ_j Σ_l Q_j(l) ψ_u(l) + ½ Σ_{j≠k} Σ_{l,l'} Q_j(l) μ(l, l') Q_k(l') K(j, k)

which equals ``E(y)`` when ``Q`` is one-hot (for a symmetric μ), is differentiable in the initial
attention, the features and ``Q``, and is what mean-field inference lowers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["DenseCRF", "pairwise_position_sqdist"]


def pairwise_position_sqdist(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Squared Euclidean distances between the pixel coordinates of an ``height × width`` grid.

    Returns:
        ``(m, m)`` tensor, ``m = height·width``, pixels in row-major order, units pixels².
    """
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32, device=device),
        torch.arange(width, dtype=torch.float32, device=device),
        indexing="ij",
    )
    pos = torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=1)
    return (pos[:, None, :] - pos[None, :, :]).square().sum(-1)


class DenseCRF(nn.Module):
    """Binary fully connected CRF refined by unrolled mean-field iterations.

    Args:
        num_iters: mean-field iterations (ARL: 5).
        w_appearance: ``w1``, weight of the position + feature ("appearance") kernel (ARL: 5).
        w_smooth: ``w2``, weight of the position-only smoothness kernel (ARL: 3).
        alpha: ``α``, position scale of the appearance kernel, pixels (ARL: 160).
        beta: ``β``, feature scale of the appearance kernel, feature units (ARL: 3).
        gamma: ``γ``, position scale of the smoothness kernel, pixels (ARL: 3).
        learn_compatibility: make the 2×2 label compatibility ``μ`` a parameter. It is
            initialised as the Potts model ``μ(l, l') = [l ≠ l']`` either way.
        groups: number of independent compatibility matrices (ARL: one per AU). Map ``k`` of a
            batch of ``N`` maps uses matrix ``k mod groups``, so stack maps as ``(B·groups, …)``
            with the group index varying fastest (e.g. ``(B, n_AU, H, W).reshape(-1, H, W)``).
        eps: probabilities are clamped to ``[eps, 1 − eps]`` before ``−log``.

    ``forward(attention, features)`` takes the initial attention ``(N, 1, H, W)`` (or ``(N, H, W)``),
    values ``P⁰(y=1)`` in (0, 1), and pixel features ``(N, D, H, W)``; it returns the refined
    attention ``P(y=1)`` with the shape of ``attention``.
    """

    def __init__(
        self,
        *,
        num_iters: int = 5,
        w_appearance: float = 5.0,
        w_smooth: float = 3.0,
        alpha: float = 160.0,
        beta: float = 3.0,
        gamma: float = 3.0,
        learn_compatibility: bool = True,
        groups: int = 1,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if num_iters < 0:
            raise ValueError(f"num_iters must be >= 0, got {num_iters}")
        for name, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if v <= 0:
                raise ValueError(f"{name} must be positive, got {v}")
        self.num_iters = num_iters
        self.w_appearance = float(w_appearance)
        self.w_smooth = float(w_smooth)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.eps = float(eps)
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.groups = groups
        potts = (1.0 - torch.eye(2)).repeat(groups, 1, 1)  # (groups, 2, 2)
        if learn_compatibility:
            self.compatibility = nn.Parameter(potts)
        else:
            self.register_buffer("compatibility", potts)

    def extra_repr(self) -> str:
        return (
            f"num_iters={self.num_iters}, w_appearance={self.w_appearance}, w_smooth={self.w_smooth}, "
            f"alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}"
        )

    # -- pieces -------------------------------------------------------------------------------
    def kernels(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two pairwise kernels, with zero diagonals (no self-messages).

        The position-only smoothness kernel is the same for every map, so it is kept as one
        ``(m, m)`` matrix and applied to all maps in a single matrix product.

        Args:
            features: ``(N, D, H, W)`` per-pixel features.

        Returns:
            ``(appearance, smooth)``: ``(N, m, m)`` = ``w1·exp(−|Δo|²/2α² − |Δf|²/2β²)`` and
            ``(m, m)`` = ``w2·exp(−|Δo|²/2γ²)``; ``m = H·W``, pixels in row-major order.
        """
        if features.dim() != 4:
            raise ValueError(f"features must be (N, D, H, W), got shape {tuple(features.shape)}")
        n, _, h, w = features.shape
        m = h * w
        pos = pairwise_position_sqdist(h, w, features.device).to(features.dtype)
        # -inf on the diagonal removes self-messages (the energy sums over j ≠ k) without an
        # in-place write that autograd would reject.
        idx = torch.arange(m, device=features.device)
        eye = idx[:, None] == idx[None, :]  # (not torch.eye: its bool ONNX export has no onnxruntime kernel)
        smooth = self.w_smooth * torch.exp((-pos / (2 * self.gamma**2)).masked_fill(eye, float("-inf")))
        # log w1 − |Δo|²/2α² − |Δf|²/2β², with |Δf|² = |f_j|² + |f_k|² − 2 f_j·f_k expanded so that
        # the whole exponent costs one broadcast add and one batched matrix product per map.
        const = (math.log(self.w_appearance) - pos / (2 * self.alpha**2)).masked_fill(eye, float("-inf"))
        f = features.reshape(n, -1, m).transpose(1, 2)  # (N, m, D)
        half_sq = f.square().sum(-1) / (2 * self.beta**2)  # (N, m)
        if torch.is_grad_enabled() and (features.requires_grad or torch.jit.is_tracing()):
            base = const - half_sq[:, :, None] - half_sq[:, None, :]
            appearance = torch.exp(torch.baddbmm(base, f, f.transpose(1, 2), alpha=1.0 / self.beta**2))
        else:
            # Inference: one (N, m, m) buffer updated in place instead of three temporaries.
            appearance = (const - half_sq[:, :, None]).sub_(half_sq[:, None, :])
            appearance.baddbmm_(f, f.transpose(1, 2), alpha=1.0 / self.beta**2).exp_()
        return appearance, smooth

    def kernel(self, features: torch.Tensor) -> torch.Tensor:
        """Dense pairwise kernel ``K(j, k)`` (both kernels summed), ``(N, m, m)`` with a zero diagonal."""
        appearance, smooth = self.kernels(features)
        return appearance + smooth

    def unary(self, attention: torch.Tensor) -> torch.Tensor:
        """Unary potentials ``−log P⁰(y = l)``: ``(N, H, W)`` or ``(N, 1, H, W)`` → ``(N, m, 2)``."""
        p1 = self._flat(attention).clamp(self.eps, 1 - self.eps)
        return -torch.log(torch.stack([1 - p1, p1], dim=-1))

    def _flat(self, attention: torch.Tensor) -> torch.Tensor:
        if attention.dim() == 4:
            if attention.shape[1] != 1:
                raise ValueError(f"attention must be (N, 1, H, W) or (N, H, W), got {tuple(attention.shape)}")
            attention = attention[:, 0]
        if attention.dim() != 3:
            raise ValueError(f"attention must be (N, 1, H, W) or (N, H, W), got {tuple(attention.shape)}")
        return attention.reshape(attention.shape[0], -1)

    def _pairwise(
        self, q: torch.Tensor, kernel: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        # message(j, l') = Σ_k K(j, k) Q_k(l');  compatibility transform: Σ_l' μ(l, l') message(j, l')
        # Both kernels are symmetric, so K·Q = (Qᵀ·K)ᵀ; the row-vector form streams K contiguously
        # and ran ≈3× faster on CPU for (m, m) × (m, 2) products.
        if isinstance(kernel, tuple):
            appearance, smooth = kernel
            n, m, _ = q.shape
            msg = torch.bmm(q.transpose(1, 2), appearance).transpose(1, 2)
            # One (N·2, m) × (m, m) product for the smoothness kernel shared by all maps.
            msg = msg + (q.transpose(1, 2).reshape(n * 2, m) @ smooth).reshape(n, 2, m).transpose(1, 2)
        else:
            msg = torch.bmm(q.transpose(1, 2), kernel).transpose(1, 2)
        mu = self.compatibility.transpose(1, 2)
        if self.groups == 1:
            return msg @ mu[0]
        return torch.bmm(msg, mu.repeat(msg.shape[0] // self.groups, 1, 1))

    # -- inference ----------------------------------------------------------------------------
    def mean_field(
        self,
        attention: torch.Tensor,
        features: torch.Tensor,
        kernel: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Run the unrolled iterations, returning every iterate.

        Args:
            attention: initial attention ``P⁰(y=1)``, ``(N, 1, H, W)`` or ``(N, H, W)``.
            features: ``(N, D, H, W)``.
            kernel: precomputed ``self.kernels(features)`` or ``self.kernel(features)`` (optional).

        Returns:
            ``num_iters + 1`` tensors ``Q`` of shape ``(N, m, 2)`` (label 0, label 1), the first
            being the initial distribution ``P⁰``.
        """
        self._check(attention, features)
        unary = self.unary(attention)
        kernel = self.kernels(features) if kernel is None else kernel
        q = torch.softmax(-unary, dim=-1)
        qs = [q]
        for _ in range(self.num_iters):
            q = torch.softmax(-unary - self._pairwise(q, kernel), dim=-1)
            qs.append(q)
        return qs

    def forward(self, attention: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Refined attention ``P(y=1)`` with the shape of ``attention``."""
        q = self.mean_field(attention, features)[-1]
        return q[..., 1].reshape(attention.shape)

    def energy(
        self,
        attention: torch.Tensor,
        features: torch.Tensor,
        refined: torch.Tensor | None = None,
        kernel: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Expected CRF energy ``E(Q)`` of each map (see the module docstring), in nats.

        Args:
            attention: initial attention ``P⁰(y=1)`` defining the unary term, ``(N, 1, H, W)`` or
                ``(N, H, W)``.
            features: pixel features ``(N, D, H, W)`` defining the pairwise kernel.
            refined: ``Q(y=1)`` to evaluate, same shape as ``attention`` (default: run inference
                with ``forward`` and use its output), or an ``(N, m, 2)`` distribution.
            kernel: precomputed ``self.kernels(features)`` or ``self.kernel(features)`` (optional).

        Returns:
            ``(N,)`` energies (sums over pixels and pixel pairs; divide by ``m`` for a per-pixel scale).
        """
        self._check(attention, features)
        kernel = self.kernels(features) if kernel is None else kernel
        if refined is None:
            refined = self.mean_field(attention, features, kernel)[-1]
        if refined.shape == attention.shape:
            r = self._flat(refined)
            q = torch.stack([1 - r, r], dim=-1)
        elif (
            refined.dim() == 3 and refined.shape[-1] == 2 and refined.shape[:2] == self._flat(attention).shape
        ):
            q = refined
        else:
            raise ValueError(
                f"refined must have the attention's shape {tuple(attention.shape)} or be (N, m, 2), "
                f"got {tuple(refined.shape)}"
            )
        unary = self.unary(attention)
        return (q * unary).sum((1, 2)) + 0.5 * (q * self._pairwise(q, kernel)).sum((1, 2))

    def _check(self, attention: torch.Tensor, features: torch.Tensor) -> None:
        a = self._flat(attention)
        if a.shape[0] % self.groups:
            raise ValueError(f"the number of maps ({a.shape[0]}) must be a multiple of groups={self.groups}")
        if (
            features.dim() != 4
            or features.shape[0] != a.shape[0]
            or features.shape[2] * features.shape[3] != a.shape[1]
        ):
            raise ValueError(
                f"features {tuple(features.shape)} must be (N, D, H, W) matching attention "
                f"{tuple(attention.shape)}"
            )
