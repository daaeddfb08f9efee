"""The PyTorch reference for `train_throughput.py`: transformers' Swinv2Model / MobileViTV2Model with the same
configuration as our presets, the same AAM head (lateral 1x1 convs, bilinear fusion at stride 4, refinement,
spatial-softmax heatmaps x sigmoid point maps x E2H(sigmoid edge maps), soft-argmax) and the same losses
(STAR + Adaptive Wing on point and edge maps), AdamW with per-parameter gradient-norm clipping.

Benchmark-only: needs `requirements-bench.txt`; the landmark_kd package never imports torch.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def torch_backbone(preset: str, image_size: int):
    """(module, feature channels at strides 4..32, fn(module, x) -> features) for one of our presets."""
    from landmark_kd.models.mobilevitv2.mobilevitv2_presets import MOBILEVITV2_PRESETS, mobilevitv2_config
    from landmark_kd.models.swinv2.swinv2_presets import SWINV2_PRESETS, swinv2_config

    if preset in SWINV2_PRESETS:
        from transformers import Swinv2Config, Swinv2Model

        c = swinv2_config(preset, image_size)
        model = Swinv2Model(Swinv2Config(image_size=image_size, patch_size=c.patch_size, embed_dim=c.embed_dim,
                                         depths=list(c.depths), num_heads=list(c.num_heads), window_size=c.window_size,
                                         mlp_ratio=c.mlp_ratio, drop_path_rate=c.drop_path_rate), add_pooling_layer=False)

        def features(module, x):  # stage outputs before patch merging, as our backbone returns them
            emb, dims = module.embeddings(x)
            out = module.encoder(emb, dims, output_hidden_states=True, output_hidden_states_before_downsampling=True)
            return out.reshaped_hidden_states[1:5]

        return model, [c.embed_dim * 2 ** i for i in range(4)], features
    if preset in MOBILEVITV2_PRESETS:
        from transformers import MobileViTV2Config, MobileViTV2Model

        c = mobilevitv2_config(preset, image_size)
        # every field of our config: the fast preset's expand_ratio 1.0 was left at transformers' 2.0
        model = MobileViTV2Model(MobileViTV2Config(
            image_size=image_size, width_multiplier=c.width_multiplier, expand_ratio=c.expand_ratio,
            ffn_multiplier=c.ffn_multiplier, base_attn_unit_dims=list(c.base_attn_unit_dims),
            n_attn_blocks=list(c.n_attn_blocks), patch_size=c.patch_size, layer_norm_eps=c.layer_norm_eps))

        def features(module, x):
            return module(x, output_hidden_states=True).hidden_states[1:5]

        return model, c.channels()[2:], features
    raise ValueError(f"unknown preset {preset!r}")


class TorchAAMHead(nn.Module):
    def __init__(self, in_channels: list[int], dim: int, convs: int, light: bool, e2h: np.ndarray, e2h_bias: np.ndarray):
        """`e2h` (N, E) and `e2h_bias` (N,) as `LandmarkScheme.edge_to_point_matrix` returns them."""
        super().__init__()
        n, e = e2h.shape
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels)
        layers = []
        for _ in range(convs):
            if light:
                layers += [nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False), nn.BatchNorm2d(dim), nn.ReLU(),
                           nn.Conv2d(dim, dim, 1, bias=False)]
            else:
                layers += [nn.Conv2d(dim, dim, 3, padding=1, bias=False)]
            layers += [nn.BatchNorm2d(dim), nn.ReLU()]
        self.refine = nn.Sequential(*layers)
        self.heat, self.points, self.edges = nn.Conv2d(dim, n, 1), nn.Conv2d(dim, n, 1), nn.Conv2d(dim, e, 1)
        self.register_buffer("e2h", torch.tensor(e2h, dtype=torch.float32))  # (N, E)
        self.register_buffer("e2h_bias", torch.tensor(e2h_bias, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, features):
        size = features[0].shape[-2:]
        fused = sum(F.interpolate(lat(f), size=size, mode="bilinear", align_corners=False) if f.shape[-2:] != size
                    else lat(f) for lat, f in zip(self.lateral, features))
        x = self.refine(fused)
        logits = self.heat(x)
        b, n, h, w = logits.shape
        heat = torch.softmax(logits.flatten(2), dim=2).view(b, n, h, w)
        points = torch.sigmoid(self.points(x))
        edges = torch.sigmoid(self.edges(x))
        attention = torch.einsum("behw,ne->bnhw", edges, self.e2h) + self.e2h_bias
        heatmaps = heat * points * attention
        total = heatmaps.sum((2, 3)).clamp_min(1e-12)
        xs = (heatmaps.sum(2) * torch.arange(w, dtype=heatmaps.dtype)).sum(-1) / total
        ys = (heatmaps.sum(3) * torch.arange(h, dtype=heatmaps.dtype)).sum(-1) / total
        return {"heatmaps": heatmaps, "point_maps": points, "edge_maps": edges,
                "landmarks": torch.stack([xs, ys], -1) * 4 + 1.5}


def star_loss(landmarks: torch.Tensor, heatmaps: torch.Tensor, w: float = 1.0, eps: float = 1e-5, scale: float = 0.01):
    """landmarks (B, N, 2) in [-1, 1], heatmaps (B, N, H, W): the same closed-form STAR as losses/star_loss.py."""
    h, wd = heatmaps.shape[-2:]
    hm = heatmaps / heatmaps.sum((2, 3), keepdim=True).clamp_min(1e-6)
    xs = torch.linspace(-1, 1, wd).view(1, 1, 1, wd)
    ys = torch.linspace(-1, 1, h).view(1, 1, h, 1)
    mx, my = (hm * xs).sum((2, 3), keepdim=True), (hm * ys).sum((2, 3), keepdim=True)
    dx, dy = xs - mx, ys - my
    v1 = hm.sum((2, 3)) + eps
    denom = v1 - (hm.square().sum((2, 3)) + eps) / v1
    a, b, c = ((hm * dx * dx).sum((2, 3)) / denom, (hm * dx * dy).sum((2, 3)) / denom, (hm * dy * dy).sum((2, 3)) / denom)
    half, radius = (a + c) / 2, torch.sqrt(((a - c) / 2).square() + b.square() + 1e-12)
    minor, major = half - radius, half + radius
    theta = 0.5 * torch.atan2(2 * b, a - c + 1e-12)
    cos, sin = torch.cos(theta), torch.sin(theta)
    ex, ey = landmarks[..., 0] - mx.flatten(1), landmarks[..., 1] - my.flatten(1)

    def smooth_l1(e):
        sq = e.square()
        return torch.where(sq < scale * scale, 0.5 / scale * sq, torch.sqrt(sq.clamp_min(1e-6)) - 0.5 * scale)

    trans = smooth_l1(-sin * ex + cos * ey) / torch.sqrt(minor + eps) + smooth_l1(cos * ex + sin * ey) / torch.sqrt(major + eps)
    return (trans + w * (minor.abs() + major.abs())).mean()


def awing_loss(target: torch.Tensor, pred: torch.Tensor, omega=14.0, theta=0.5, epsilon=1.0, alpha=2.1,
               weight=10.0, threshold=0.2):
    delta = (pred - target).abs()
    power = alpha - target
    ratio = theta / epsilon
    a = omega / (1 + ratio ** power) * power * ratio ** (power - 1) / epsilon
    c = theta * a - omega * torch.log1p(ratio ** power)
    loss = torch.where(delta < theta, omega * torch.log1p((delta / epsilon) ** power), a * delta - c)
    mask = (F.max_pool2d(target, 3, 1, 1) >= threshold).float()
    return (loss * (weight * mask + 1)).mean()


class TorchLandmarkTrainer:
    """Backbone + head + losses + AdamW, one `step(x, targets)` per batch (NCHW)."""

    def __init__(self, preset: str, image_size: int, head_dim: int, head_convs: int, light: bool, scheme,
                 lr: float = 2e-3, weight_decay: float = 0.05, clipnorm: float | None = 5.0,
                 point_weight: float = 10.0, edge_weight: float = 10.0):
        self.backbone, channels, self.features = torch_backbone(preset, image_size)
        matrix, bias = scheme.edge_to_point_matrix()
        self.head = TorchAAMHead(channels, head_dim, head_convs, light, matrix, bias)
        self.params = [p for p in list(self.backbone.parameters()) + list(self.head.parameters()) if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay)
        self.clipnorm, self.point_weight, self.edge_weight = clipnorm, point_weight, edge_weight
        self.backbone.train()
        self.head.train()

    def count_params(self) -> int:
        return sum(p.numel() for p in self.params)

    def step(self, x: torch.Tensor, targets: dict) -> float:
        out = self.head(self.features(self.backbone, x))
        loss = (star_loss(targets["landmarks"], out["heatmaps"])
                + self.point_weight * awing_loss(targets["heatmaps"], out["point_maps"])
                + self.edge_weight * awing_loss(targets["edges"], out["edge_maps"]))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clipnorm:  # per-parameter norm clip, as Keras' clipnorm does
            grads = [p.grad for p in self.params if p.grad is not None]
            norms = torch._foreach_norm(grads)
            torch._foreach_mul_(grads, [torch.clamp(self.clipnorm / (n + 1e-6), max=1.0) for n in norms])
        self.optimizer.step()
        return float(loss.detach())
