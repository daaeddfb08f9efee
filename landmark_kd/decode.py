"""Heatmaps to coordinates, in numpy: soft-argmax (what the model graph and L_STAR use) and its local form
around each peak (argmax with sub-pixel refinement, the alternative `benchmarks/heatmap_decoding.py` measures);
plus the mapping from heatmap grid back to crop and original-image pixels."""
from __future__ import annotations

import numpy as np


def soft_argmax(heatmaps: np.ndarray) -> np.ndarray:
    """(B, H, W, N) non-negative maps -> (B, N, 2) heatmap-grid (x, y): the normalised weighted mean."""
    hm = np.maximum(np.asarray(heatmaps, np.float64), 0)
    total = np.maximum(hm.sum(axis=(1, 2)), 1e-12)
    ys = np.arange(hm.shape[1], dtype=np.float64)
    xs = np.arange(hm.shape[2], dtype=np.float64)
    x = (hm.sum(axis=1) * xs[None, :, None]).sum(axis=1) / total
    y = (hm.sum(axis=2) * ys[None, :, None]).sum(axis=1) / total
    return np.stack([x, y], -1).astype(np.float32)


def peak_share(heatmaps: np.ndarray) -> np.ndarray:
    """(B, H, W, N) non-negative maps -> (B, N): the share of each map's mass in its heaviest cell, from 1/(H*W)
    (flat: no idea where the point is) to 1 (one cell). Why: its mean over a face's points tells a face from a
    crop with none (background, a detector's false face, a track that drifted off) and ranks faces by error
    (README, "Landmark quality"); for one point alone it says little. It depends on the model's heatmap size
    and training, so compare it between crops run by one model."""
    hm = np.maximum(np.asarray(heatmaps, np.float64), 0)
    return (hm.max(axis=(1, 2)) / np.maximum(hm.sum(axis=(1, 2)), 1e-12)).astype(np.float32)


def local_soft_argmax(heatmaps: np.ndarray, radius: int) -> np.ndarray:
    """(B, H, W, N) non-negative maps -> (B, N, 2) heatmap-grid (x, y): the weighted mean over the
    (2 radius + 1)^2 cells around each map's peak (clipped at the border), so mass far from the peak (a second
    mode, a diffuse tail) does not pull the point towards it."""
    hm = np.maximum(np.asarray(heatmaps, np.float64), 0)
    b, h, w, n = hm.shape
    flat = hm.transpose(0, 3, 1, 2).reshape(b, n, h * w)
    peak_y, peak_x = np.divmod(flat.argmax(-1), w)  # (B, N)
    offsets = np.arange(-radius, radius + 1)
    ys = peak_y[..., None, None] + offsets[:, None]  # (B, N, K, 1)
    xs = peak_x[..., None, None] + offsets[None, :]  # (B, N, 1, K)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    cells = np.clip(ys, 0, h - 1) * w + np.clip(xs, 0, w - 1)  # (B, N, K, K)
    weights = np.take_along_axis(flat, cells.reshape(b, n, -1), -1).reshape(cells.shape) * inside
    total = np.maximum(weights.sum((-2, -1)), 1e-12)
    x = (weights * xs).sum((-2, -1)) / total
    y = (weights * ys).sum((-2, -1)) / total
    return np.stack([x, y], -1).astype(np.float32)


def heatmap_to_pixels(points: np.ndarray, stride: int) -> np.ndarray:
    """Heatmap-grid coordinates -> model-input pixels (inverse of data.targets.pixels_to_heatmap)."""
    return np.asarray(points) * stride + (stride - 1) / 2.0


def normalised_to_pixels(points: np.ndarray, heatmap_size: int, stride: int) -> np.ndarray:
    """[-1, 1] heatmap coordinates -> model-input pixels (inverse of the training targets)."""
    return heatmap_to_pixels((np.asarray(points) + 1.0) / 2.0 * (heatmap_size - 1), stride)


def image_to_crop(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map (B, N, 2) original-image pixels into each sample's crop through its forward 2x3 affine."""
    affine = np.asarray(affine)
    return np.einsum("bij,bnj->bni", affine[:, :, :2], np.asarray(points)) + affine[:, None, :, 2]


def crop_to_image(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map (B, N, 2) crop pixels back to original-image pixels through each sample's forward 2x3 affine."""
    affine = np.asarray(affine, np.float64)
    lin, shift = affine[:, :, :2], affine[:, :, 2]
    inv = np.linalg.inv(lin)
    rel = np.asarray(points, np.float64) - shift[:, None, :]
    return np.einsum("bij,bnj->bni", inv, rel).astype(np.float32)


def mirror_points(points: np.ndarray, size: int, permutation: np.ndarray) -> np.ndarray:
    """(B, N, 2) points predicted on left-right mirrored `size`-pixel crops, in the unmirrored crops' frame:
    x -> size - 1 - x (pixel centres, as the pipeline's flip) and each left point swapped with its right twin."""
    out = np.asarray(points, np.float32)[:, np.asarray(permutation)].copy()
    out[..., 0] = (size - 1) - out[..., 0]
    return out
