"""Fully connected CRF over a binary attention map, with mean-field inference unrolled as a
recurrent module (Krähenbühl & Koltun, NIPS 2011; Zheng et al., "Conditional Random Fields as
Recurrent Neural Networks", ICCV 2015), as used by ARL (Shao et al., "Facial Action Unit Detection
Using Attention and Relation Learning", IEEE TAFFC 2019, §3.4) to refine spatial attention.

For one map with ``m = H·W`` pixels, label ``y_j ∈ {0, 1}`` (1 = "attend"), the energy is

    E(y) = Σ_j ψ_u(y_j) + ½ Σ_j Σ_{k≠j} μ(y_j, y_k) · K(j, k)
    ψ_u(y_j) = −log P⁰(y_j),         P⁰(y_j = 1) = v⁰_j (the initial attention)
    K(j, k)  = w1 · K_a(j, k) + w2 · K_s(j, k)
    K_a(j, k) = exp(−|o_j − o_k|² / 2α² − |f_j − f_k|² / 2β²) / Z_a(j),
    K_s(j, k) = exp(−|o_j − o_k|² / 2γ²) / Z_s(j)

with ``o`` the pixel coordinates (pixels of the attention map) and ``f`` learned per-pixel features.

**Kernel normalisation** (``normalize``). With ``"none"`` the normalisers ``Z`` are 1 and ``E`` is
ARL's eq. 3–4 literally. Each pixel then receives the sum of ``m − 1`` messages: at ARL's 44×44 maps
and α = 160 the appearance kernel is nearly constant over the map, so a pixel's pairwise term is
≈ w1·1935 nats against a unary term of a few nats, mean-field saturates every map to all-0 or
all-1 after one iteration and no gradient reaches the initial attention. Both reference
implementations ARL cites normalise their filters by the filter response to an all-ones image
(CRF-RNN's ``spatial_norm`` / ``bilateral_norms``, kept in the authors' own Caffe layer
``multi_stage_meanfield_au3``), i.e. ``Z(j) = Σ_{k≠j} exp(…)``: each message is then a weighted
*average* over the other pixels, bounded by ``w1 + w2`` whatever the map size (``"row"``).

That is still too strong at ARL's weights. A mean-field step maps a pixel's attention q to
``σ(s + μ·J·(2q̄ − 1))`` with ``q̄`` the kernel-weighted average of the others and ``J`` the total
kernel weight; around a uniform map its gain is ``μ·J/2``. With ``J = w1 + w2 = 8`` the gain is 4:
wherever the pixel features do not yet separate the AU region from the rest — every map at
initialisation — five iterations amplify any imbalance until the whole map is all-on or
all-off, and the refined attention passes no gradient back. ``"convex"`` (the default) keeps the
kernels' shapes and their ``w1 : w2`` ratio but scales them to total weight 1 (gain ½ with the
Potts μ): the refinement starts as a feature- and position-aware smoothing of the initial
attention, and the learned μ (up to ``max_compatibility``) sets how strongly it groups pixels
once the features separate regions.

**Memory.** Nothing of size ``m × m`` per map is kept. The appearance message
``Σ_k K_a(j, k) Q_k`` is a softmax-weighted average over pixels — an attention operation — so it
runs through ``torch.nn.functional.scaled_dot_product_attention`` (a fused, memory-efficient
kernel on CPU and GPU) with queries/keys built so that ``q_j · k_k = log K_a(j, k) + const_j``:
``q_j = [f_j/β, o_j/α, 1]``, ``k_k = [f_k/β, o_k/α, −|f_k|²/2β² − |o_k|²/2α²]``, the diagonal masked.
For ``normalize="none"`` an extra "sink" key with logit ``|f_j|²/2β² + |o_j|²/2α²`` recovers the
unnormalised sum. The position-only kernel is a separable Gaussian blur (two small matrices).
ARL at l = 176, 12 AUs, batch 8 (96 maps of 44×44) needed 12.7 GB with the dense ``(N, m, m)``
kernels this replaces.

For the ARL loss term, ``DenseCRF.energy`` evaluates the energy's expectation under a factorised
distribution ``Q`` (typically the refined attention returned by ``forward``):

    E(Q) = Σ_j Σ_l Q_j(l) ψ_u(l) + ½ Σ_j Σ_{k≠j} Σ_{l,l'} Q_j(l) μ(l, l') Q_k(l') K(j, k)

which equals ``E(y)`` when ``Q`` is one-hot, is differentiable in the initial attention, the
features and ``Q``, and is what mean-field inference lowers.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DenseCRF", "pairwise_position_sqdist"]

NORMALIZE = ("convex", "row", "none")
ENERGY_WRT = ("all", "features")


def pairwise_position_sqdist(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Squared Euclidean distances between the pixel coordinates of an ``height × width`` grid.

    Returns:
        ``(m, m)`` tensor, ``m = height·width``, pixels in row-major order, units pixels².
    """
    pos = _positions(height, width, device)
    return (pos[:, None, :] - pos[None, :, :]).square().sum(-1)


def _positions(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """``(m, 2)`` pixel coordinates (row, column) in row-major order."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32, device=device),
        torch.arange(width, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=1)


def _off_diagonal(m: int, cols: int, device: torch.device) -> torch.Tensor:
    """``(m, cols)`` bool, False on the diagonal (no self-messages), True elsewhere.

    Built by comparison rather than ``torch.eye``: the bool ``EyeLike`` an ONNX export would get
    has no onnxruntime kernel.
    """
    rows = torch.arange(m, device=device)
    return rows[:, None] != torch.arange(cols, device=device)[None, :]


def _additive_mask(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where ``keep``, −inf elsewhere: built once per forward and shared by every iteration
    (a bool mask would be converted to a new float copy by every attention call)."""
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, float("-inf"))


class DenseCRF(nn.Module):
    """Binary fully connected CRF refined by unrolled mean-field iterations.

    Args:
        num_iters: mean-field iterations (ARL: 5).
        w_appearance: ``w1``, weight of the position + feature ("appearance") kernel (ARL: 5).
        w_smooth: ``w2``, weight of the position-only smoothness kernel (ARL: 3).
        alpha: ``α``, position scale of the appearance kernel, pixels (ARL: 160).
        beta: ``β``, feature scale of the appearance kernel, feature units (ARL: 3).
        gamma: ``γ``, position scale of the smoothness kernel, pixels (ARL: 3).
        normalize: ``"convex"`` (each kernel divided by its sum over the other pixels, then mixed
            with weights ``w1 : w2`` summing to 1), ``"row"`` (divided by its sum, weights ``w1``,
            ``w2``: CRF-RNN's and the authors' code) or ``"none"`` (the literal sums of ARL
            eq. 3–4); see the module docstring.
        learn_compatibility: make the 2×2 label compatibility ``μ`` a parameter. It is
            initialised as the Potts model ``μ(l, l') = [l ≠ l']`` either way.
        max_compatibility: μ is used clamped to ``[0, max_compatibility]`` (bounded energy).
        groups: number of independent compatibility matrices (ARL: one per AU). Map ``k`` of a
            batch of ``N`` maps uses matrix ``k mod groups``, so stack maps as ``(B·groups, …)``
            with the group index varying fastest (e.g. ``(B, n_AU, H, W).reshape(-1, H, W)``).
        eps: probabilities are clamped to ``[eps, 1 − eps]`` before ``−log``.

    ``forward(attention, features)`` takes the initial attention ``(N, 1, H, W)`` (or ``(N, H, W)``),
    values ``P⁰(y=1)`` in (0, 1), and pixel features ``(N, D, H, W)``; it returns the refined
    attention ``P(y=1)`` with the shape of ``attention``. Maps need at least 2 pixels.
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
        normalize: str = "convex",
        learn_compatibility: bool = True,
        max_compatibility: float = 4.0,
        groups: int = 1,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if num_iters < 0:
            raise ValueError(f"num_iters must be >= 0, got {num_iters}")
        for name, v in (
            ("alpha", alpha),
            ("beta", beta),
            ("gamma", gamma),
            ("max_compatibility", max_compatibility),
        ):
            if v <= 0:
                raise ValueError(f"{name} must be positive, got {v}")
        if w_appearance < 0 or w_smooth < 0:
            raise ValueError(f"kernel weights must be >= 0, got w1={w_appearance}, w2={w_smooth}")
        if normalize not in NORMALIZE:
            raise ValueError(f"normalize must be one of {NORMALIZE}, got {normalize!r}")
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.num_iters = num_iters
        self.w_appearance = float(w_appearance)
        self.w_smooth = float(w_smooth)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.normalize = normalize
        self.max_compatibility = float(max_compatibility)
        self.eps = float(eps)
        self.groups = groups
        potts = (1.0 - torch.eye(2)).repeat(groups, 1, 1)  # (groups, 2, 2)
        if learn_compatibility:
            self.compatibility = nn.Parameter(potts)
        else:
            self.register_buffer("compatibility", potts)

    def extra_repr(self) -> str:
        return (
            f"num_iters={self.num_iters}, w_appearance={self.w_appearance}, w_smooth={self.w_smooth}, "
            f"alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, normalize={self.normalize!r}, "
            f"groups={self.groups}"
        )

    def kernel_weights(self) -> tuple[float, float]:
        """Weights of the appearance and smoothness kernels as applied: ``(w1, w2)``, or
        ``(w1, w2) / (w1 + w2)`` for ``normalize="convex"``."""
        if self.normalize == "convex":
            total = self.w_appearance + self.w_smooth
            return self.w_appearance / total, self.w_smooth / total
        return self.w_appearance, self.w_smooth

    def mu(self) -> torch.Tensor:
        """The compatibility in use, ``(groups, 2, 2)``, clamped to ``[0, max_compatibility]``."""
        return self.compatibility.clamp(0.0, self.max_compatibility)

    # -- kernels ------------------------------------------------------------------------------
    def _appearance_qk(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and attention mask giving ``softmax_k(q_j·k_k) = K_a(j, ·)`` (row-normalised).

        Returns:
            ``query (N, 1, m, d)``, ``key (N, 1, m', d)``, ``mask (m, m')`` — with ``m' = m + 1``
            (the sink key, last) for ``normalize="none"``.
        """
        n, _, h, w = features.shape
        m = h * w
        f = features.reshape(n, -1, m).transpose(1, 2) / self.beta  # (N, m, D)
        o = (_positions(h, w, features.device).to(features.dtype) / self.alpha).expand(n, m, 2)
        c = -0.5 * (f.square().sum(-1) + o.square().sum(-1))  # (N, m): log-kernel = q·k + c_j
        ones = torch.ones_like(c)
        if self.normalize != "none":
            query = torch.cat([f, o, ones[..., None]], -1)
            key = torch.cat([f, o, c[..., None]], -1)
            mask = _additive_mask(_off_diagonal(m, m, features.device), features.dtype)
        else:
            # The sink's logit −c_j makes its softmax weight 1 / (1 + Σ_k K(j, k)).
            query = torch.cat([f, o, ones[..., None], -c[..., None]], -1)
            key = torch.cat([f, o, c[..., None], torch.zeros_like(c)[..., None]], -1)
            sink = torch.zeros(n, 1, key.shape[-1], dtype=key.dtype, device=key.device)
            sink[..., -1] = 1.0
            key = torch.cat([key, sink], 1)
            mask = _additive_mask(_off_diagonal(m, m + 1, features.device), features.dtype)
        return query[:, None], key[:, None], mask

    def _smooth_factors(self, h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The separable position-only Gaussian: ``exp(−Δy²/2γ²)`` (H, H) and ``exp(−Δx²/2γ²)`` (W, W)."""
        ys = torch.arange(h, dtype=like.dtype, device=like.device)
        xs = torch.arange(w, dtype=like.dtype, device=like.device)
        gy = torch.exp(-(ys[:, None] - ys[None, :]).square() / (2 * self.gamma**2))
        gx = torch.exp(-(xs[:, None] - xs[None, :]).square() / (2 * self.gamma**2))
        return gy, gx

    def _prepare(self, features: torch.Tensor) -> tuple:
        if features.dim() != 4:
            raise ValueError(f"features must be (N, D, H, W), got shape {tuple(features.shape)}")
        h, w = features.shape[-2:]
        if h * w < 2:
            raise ValueError(f"the CRF needs maps of at least 2 pixels, got {h}×{w}")
        gy, gx = self._smooth_factors(h, w, features)
        # Σ_{k≠j} K_s(j, k) = blur(1) − 1 (the self weight is exp(0) = 1).
        smooth_norm = (gy.sum(1)[:, None] * gx.sum(1)[None, :] - 1.0).clamp_min(1e-12).reshape(-1)
        return (*self._appearance_qk(features), gy, gx, smooth_norm, (h, w))

    def messages(self, q: torch.Tensor, prepared: tuple) -> torch.Tensor:
        """Kernel-weighted messages ``Σ_{k≠j} K(j, k) Q_k(l)``, ``(N, m, 2)`` for ``Q`` ``(N, m, 2)``."""
        query, key, mask, gy, gx, smooth_norm, (h, w) = prepared
        n, m, _ = q.shape
        d = query.shape[-1]
        # The fused CPU kernel needs values as wide as queries: Q goes in the first two columns.
        v = F.pad(q, (0, d - 2))
        if key.shape[2] > m:  # unnormalised: the sink carries a 1 in column 2
            sink = torch.zeros(n, 1, d, dtype=q.dtype, device=q.device)
            sink[..., 2] = 1.0
            v = torch.cat([v, sink], 1)
        out = F.scaled_dot_product_attention(query, key, v[:, None], attn_mask=mask, scale=1.0)[:, 0]
        app = out[..., :2] if self.normalize != "none" else out[..., :2] / out[..., 2:3]
        # Smoothness kernel: separable blur of each label plane, minus the pixel's own weight.
        planes = q.transpose(1, 2).reshape(n, 2, h, w)
        blur = (gy @ planes @ gx.T).reshape(n, 2, m).transpose(1, 2) - q
        smooth = blur / smooth_norm[None, :, None] if self.normalize != "none" else blur
        wa, ws = self.kernel_weights()
        return wa * app + ws * smooth

    def dense_kernel(self, features: torch.Tensor) -> torch.Tensor:
        """The pairwise kernel ``K(j, k)`` as a dense ``(N, m, m)`` matrix with a zero diagonal.

        For inspection and tests on small maps only (``O(N·m²)`` memory); inference never builds it.
        """
        n, _, h, w = features.shape
        m = h * w
        pos = pairwise_position_sqdist(h, w, features.device).to(features.dtype)
        f = features.reshape(n, -1, m).transpose(1, 2)
        fd = (f[:, :, None, :] - f[:, None, :, :]).square().sum(-1)
        off = _off_diagonal(m, m, features.device).to(features.dtype)
        ka = torch.exp(-pos / (2 * self.alpha**2) - fd / (2 * self.beta**2)) * off
        ks = (torch.exp(-pos / (2 * self.gamma**2)) * off).expand(n, m, m)
        if self.normalize != "none":
            ka = ka / ka.sum(-1, keepdim=True)
            ks = ks / ks.sum(-1, keepdim=True)
        wa, ws = self.kernel_weights()
        return wa * ka + ws * ks

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

    def _pairwise(self, q: torch.Tensor, prepared: tuple, mu: torch.Tensor) -> torch.Tensor:
        """Compatibility transform ``Σ_l' μ(l, l') message(j, l')``, ``(N, m, 2)``."""
        msg = self.messages(q, prepared)
        mu_t = mu.transpose(1, 2)
        if self.groups == 1:
            return msg @ mu_t[0]
        return torch.bmm(msg, mu_t.repeat(msg.shape[0] // self.groups, 1, 1))

    # -- inference ----------------------------------------------------------------------------
    def mean_field(self, attention: torch.Tensor, features: torch.Tensor) -> list[torch.Tensor]:
        """Run the unrolled iterations, returning every iterate.

        Args:
            attention: initial attention ``P⁰(y=1)``, ``(N, 1, H, W)`` or ``(N, H, W)``.
            features: ``(N, D, H, W)``.

        Returns:
            ``num_iters + 1`` tensors ``Q`` of shape ``(N, m, 2)`` (label 0, label 1), the first
            being the initial distribution ``P⁰``.
        """
        self._check(attention, features)
        return self._iterate(self.unary(attention), self._prepare(features))

    def _iterate(self, unary: torch.Tensor, prepared: tuple) -> list[torch.Tensor]:
        mu = self.mu()
        q = torch.softmax(-unary, dim=-1)
        qs = [q]
        for _ in range(self.num_iters):
            q = torch.softmax(-unary - self._pairwise(q, prepared, mu), dim=-1)
            qs.append(q)
        return qs

    def refine(
        self, attention: torch.Tensor, features: torch.Tensor, *, energy_wrt: str = "all"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Refined attention and its expected energy in one pass (kernels prepared once).

        Args:
            attention: ``(N, 1, H, W)`` or ``(N, H, W)`` initial attention.
            features: ``(N, D, H, W)`` pixel features.
            energy_wrt: what the energy's gradient reaches; see ``energy``.

        Returns:
            ``(refined, energy)``: ``P(y=1)`` with the shape of ``attention``, and ``(N,)`` energies
            ``E(Q)`` of the refined distributions (nats, summed over pixels).
        """
        self._check(attention, features)
        prepared = self._prepare(features)
        unary = self.unary(attention)
        q = self._iterate(unary, prepared)[-1]
        return q[..., 1].reshape(attention.shape), self._energy(q, unary, prepared, energy_wrt)

    def _energy(self, q: torch.Tensor, unary: torch.Tensor, prepared: tuple, wrt: str) -> torch.Tensor:
        if wrt not in ENERGY_WRT:
            raise ValueError(f"energy_wrt must be one of {ENERGY_WRT}, got {wrt!r}")
        mu = self.mu()
        if wrt == "features":
            q, unary, mu = q.detach(), unary.detach(), mu.detach()
        pairwise = self._pairwise(q, prepared, mu)
        return (q * unary).sum((1, 2)) + 0.5 * (q * pairwise).sum((1, 2))

    def forward(self, attention: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Refined attention ``P(y=1)`` with the shape of ``attention``."""
        q = self.mean_field(attention, features)[-1]
        return q[..., 1].reshape(attention.shape)

    def energy(
        self,
        attention: torch.Tensor,
        features: torch.Tensor,
        refined: torch.Tensor | None = None,
        *,
        energy_wrt: str = "all",
    ) -> torch.Tensor:
        """Expected CRF energy ``E(Q)`` of each map (see the module docstring), in nats.

        Args:
            attention: initial attention ``P⁰(y=1)`` defining the unary term, ``(N, 1, H, W)`` or
                ``(N, H, W)``.
            features: pixel features ``(N, D, H, W)`` defining the pairwise kernel.
            refined: ``Q(y=1)`` to evaluate, same shape as ``attention`` (default: run inference
                with ``forward`` and use its output), or an ``(N, m, 2)`` distribution.
            energy_wrt: ``"all"`` — the energy is differentiable in the initial attention, the
                features, ``refined`` and μ; ``"features"`` — only in the pixel features (the
                pairwise kernel): the attention and ``refined`` are treated as given labels and μ
                as fixed. ARL trains with ``"features"``: E is minimised over Q by mean-field
                inference itself, and as a loss its other paths have degenerate minima — the
                unary term sharpens the initial attention towards the refined one until both
                saturate to constant maps (where no gradient flows), and E is linear in μ, so it
                only shrinks the pairwise term. Over the features it is the relation-learning
                signal: pixels the refinement labels alike should look alike.

        Returns:
            ``(N,)`` energies (sums over pixels and pixel pairs; divide by ``m`` for a per-pixel scale).
        """
        self._check(attention, features)
        if refined is None:
            refined = self.mean_field(attention, features)[-1]
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
        return self._energy(q, self.unary(attention), self._prepare(features), energy_wrt)

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
