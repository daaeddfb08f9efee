"""Training targets computed in graph mode: Gaussian heatmaps, AAM edge maps, normalised coordinates.

Coordinate conventions (shared with `landmark_kd.decode`): image pixel centres sit at integers; heatmap
cell j covers input pixels [j*s, (j+1)*s) so its centre is j*s + (s-1)/2; normalised coordinates map the
heatmap grid to [-1, 1] with i/(size-1)*2-1, as STAR does.
"""
from __future__ import annotations

import tensorflow as tf

from ..schemes import LandmarkScheme


def pixels_to_heatmap(points: tf.Tensor, stride: int) -> tf.Tensor:
    """Model-input pixels -> heatmap-grid coordinates for a heatmap of `stride` (pixel centres kept aligned)."""
    return (points - (stride - 1) / 2.0) / stride


def heatmap_to_normalised(points: tf.Tensor, size: int) -> tf.Tensor:
    """Heatmap-grid coordinates -> [-1, 1] across a `size` x `size` heatmap (the STAR loss target)."""
    return points / (size - 1) * 2.0 - 1.0


def gaussian_maps(points: tf.Tensor, size: int, sigma: float) -> tf.Tensor:
    """(N, 2) heatmap-grid points -> (size, size, N) unnormalised Gaussians with peak 1."""
    grid = tf.range(size, dtype=tf.float32)
    dx = grid[None, :] - points[:, 0:1]  # (N, W)
    dy = grid[None, :] - points[:, 1:2]  # (N, H)
    gx = tf.exp(-tf.square(dx) / (2 * sigma * sigma))
    gy = tf.exp(-tf.square(dy) / (2 * sigma * sigma))
    maps = gy[:, :, None] * gx[:, None, :]  # separable: (N, H, W)
    return tf.transpose(maps, [1, 2, 0])


def edge_maps(points: tf.Tensor, scheme: LandmarkScheme, size: int, sigma: float) -> tf.Tensor:
    """(size, size, E) boundary maps exp(-d^2 / 2 sigma^2), d = distance to the edge's polyline (ADNet/STAR)."""
    pairs, owner = scheme.segments()
    if len(pairs) == 0:
        return tf.zeros((size, size, 1), tf.float32)
    a = tf.gather(points, pairs[:, 0])  # (S, 2)
    b = tf.gather(points, pairs[:, 1])
    grid = tf.range(size, dtype=tf.float32)
    yy, xx = tf.meshgrid(grid, grid, indexing="ij")
    p = tf.stack([tf.reshape(xx, [-1]), tf.reshape(yy, [-1])], -1)  # (P, 2)
    ab = b - a
    denom = tf.maximum(tf.reduce_sum(ab * ab, -1), 1e-6)  # (S,)
    ap = p[None, :, :] - a[:, None, :]  # (S, P, 2)
    t = tf.clip_by_value(tf.reduce_sum(ap * ab[:, None, :], -1) / denom[:, None], 0.0, 1.0)
    closest = a[:, None, :] + t[..., None] * ab[:, None, :]
    dist2 = tf.reduce_sum(tf.square(p[None] - closest), -1)  # (S, P)
    per_edge = tf.math.segment_min(dist2, owner)  # (E, P); owner is sorted by construction
    maps = tf.exp(-per_edge / (2 * sigma * sigma))
    return tf.transpose(tf.reshape(maps, [-1, size, size]), [1, 2, 0])
