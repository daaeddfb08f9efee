"""tf.data input pipeline: decode, crop around the face with a random similarity transform, flip with the
scheme's permutation, photometric augmentation, occlusion, and the heatmap / AAM targets.

Everything after file listing is graph-mode TF (parallel map, prefetch). Randomness is stateless and keyed
by (seed, epoch, sample), so the same seed gives the same batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..crop import CROP_MARGIN, crop_matrix
from ..errors import ConfigError
from ..schemes import LandmarkScheme
from .records import Sample, decode_plan, imread_color
from .targets import edge_maps, gaussian_maps, heatmap_to_normalised, pixels_to_heatmap


@dataclass
class PipelineConfig:
    image_size: int = 256
    heatmap_stride: int = 4
    sigma: float = 1.5  # heatmap pixels
    edge_sigma: float = 1.0
    crop_margin: float = CROP_MARGIN  # box side grows by this fraction around the face box
    rotation: float = 30.0  # degrees: +/- bound (uniform), or the sigma when rotation_normal
    rotation_normal: bool = False  # Gaussian angles clipped at 2 sigma (the paper's real-photo recipe)
    scale: float = 0.15  # +/- fraction
    translation: float = 0.08  # +/- fraction of the crop side
    flip: bool = True
    color_jitter: float = 0.3
    blur_prob: float = 0.2
    erase_prob: float = 0.25
    grey_prob: float = 0.0  # grey-scale photos (real-photo recipe)
    gamma: float = 0.0  # gamma drawn log-uniformly in [1/(1+g), 1+g]

    def __post_init__(self):
        if not 0 <= self.color_jitter < 1:  # contrast and saturation are drawn in [1 - j, 1 + j]
            raise ConfigError(f"color_jitter {self.color_jitter}: must be at least 0 and below 1")

    @classmethod
    def real_photos(cls, **overrides) -> "PipelineConfig":
        """Augmentation for real photographs, after the paper's recipe (flip, Gaussian rotation, scale, grey,
        occlusion, blur, gamma). The rotation sigma is 20 degrees rather than the paper's 45: our schedules
        are short, and the faces we are scored on are mostly upright."""
        values = dict(rotation=20.0, rotation_normal=True, scale=0.2, translation=0.08, grey_prob=0.2, gamma=0.5,
                      blur_prob=0.2, erase_prob=0.3)
        values.update(overrides)
        return cls(**values)

    @property
    def heatmap_size(self) -> int:
        return self.image_size // self.heatmap_stride


def crop_boxes(samples: list[Sample]) -> np.ndarray:
    """Square crop boxes as (cx, cy, side) before margin."""
    out = np.zeros((len(samples), 3), np.float32)
    for i, s in enumerate(samples):
        x0, y0, x1, y1 = s.face_box()
        out[i] = ((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0))
    return out


def _invert(m):
    lin = m[:, :2]
    inv = tf.linalg.inv(lin)
    return tf.concat([inv, -tf.matmul(inv, m[:, 2:3])], 1)


def _block_averaged(image: tf.Tensor, matrix: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(image, matrix), or for a crop under half scale the source region averaged over whole k x k blocks and the
    matrix that maps it: `crop.warp_square`'s rule, so a model trains and is scored on the crops `predict` cuts
    from a high-resolution photo, not on aliased ones."""
    scale = tf.sqrt(tf.abs(tf.linalg.det(matrix[:, :2])))
    k = tf.maximum(2, tf.cast(tf.round(1.0 / (1.5 * tf.maximum(scale, 1e-6))), tf.int32))
    inv = _invert(matrix)
    corners = tf.constant([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], tf.float32)
    source = tf.matmul(corners, inv[:, :2], transpose_b=True) + inv[:, 2]
    pad = tf.cast(2 * k + 2, tf.float32)
    start = tf.cast(tf.maximum(tf.floor(tf.reduce_min(source, 0)) - pad, 0.0), tf.int32)  # (x0, y0)
    high = tf.cast(tf.minimum(tf.math.ceil(tf.reduce_max(source, 0)) + pad + 1, 2.0 ** 30), tf.int32)
    extent = tf.stack([tf.shape(image)[1], tf.shape(image)[0]])  # (width, height)
    blocks = (tf.minimum(high, extent) - start) // k  # whole blocks across and down
    shrink = (scale < 0.5) & tf.reduce_all(blocks >= 2)

    def averaged():
        w, h = blocks[0], blocks[1]
        region = image[start[1]:start[1] + h * k, start[0]:start[0] + w * k]
        small = tf.image.resize(region, [h, w], method="area")  # a whole factor: each k x k block's mean
        offset = tf.cast(start, tf.float32) + 0.5 * tf.cast(k, tf.float32) - 0.5  # a block's centre
        shift = tf.linalg.matvec(matrix[:, :2], offset) + matrix[:, 2]
        return small, tf.concat([matrix[:, :2] * tf.cast(k, tf.float32), shift[:, None]], 1)

    return tf.cond(shrink, averaged, lambda: (image, matrix))


def warp(image: tf.Tensor, matrix: tf.Tensor, size: int) -> tf.Tensor:
    """Resample `image` (H, W, 3 float) through the forward affine `matrix` into a size x size crop, block-
    averaging first where the face is shrunk below half (`_block_averaged`)."""
    image, matrix = _block_averaged(image, matrix, size)
    inv = _invert(matrix)
    params = tf.concat([tf.reshape(inv, [-1]), [0.0, 0.0]], 0)[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=params, output_shape=[size, size], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")
    return out[0]


def _blur(image, sigma):
    radius = 3
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-x * x / (2 * sigma * sigma))
    k = k / tf.reduce_sum(k)
    kx = tf.tile(tf.reshape(k, [1, -1, 1, 1]), [1, 1, 3, 1])
    ky = tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, 3, 1])
    out = tf.nn.depthwise_conv2d(image[None], kx, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(out, ky, [1, 1, 1, 1], "SAME")[0]


def _photometric(image, seeds, cfg: PipelineConfig, pixel_scale: float = 1.0):
    """`pixel_scale`: the crop's size over `cfg.image_size`, so a larger copy of the crop is blurred alike."""
    j = cfg.color_jitter
    if j > 0:  # at 0, TensorFlow refuses the empty contrast and saturation ranges
        image = tf.image.stateless_random_brightness(image, 0.4 * j, seeds[0])
        image = tf.image.stateless_random_contrast(image, 1 - j, 1 + j, seeds[1])
        image = tf.image.stateless_random_saturation(image, 1 - j, 1 + j, seeds[2])
        image = tf.image.stateless_random_hue(image, 0.1 * j, seeds[3])
    u = tf.random.stateless_uniform([4], seeds[4])
    image = tf.cond(u[0] < cfg.blur_prob, lambda: _blur(image, (0.5 + 1.5 * u[1]) * pixel_scale), lambda: image)
    if cfg.grey_prob > 0:
        grey = tf.tile(tf.image.rgb_to_grayscale(image), [1, 1, 3])
        image = tf.where(u[2] < cfg.grey_prob, grey, image)
    if cfg.gamma > 0:
        log_g = math.log(1 + cfg.gamma)
        image = tf.pow(tf.clip_by_value(image, 0.0, 1.0), tf.exp((u[3] * 2 - 1) * log_g))
    return image


def _erase(image, seed, cfg: PipelineConfig, size: int | None = None):
    """Random-erasing occlusion: a rectangle of noise covering 5-25% of the crop (a `size` px one; the same
    rectangle, relative to the crop, at any size)."""
    size = size or cfg.image_size
    u = tf.random.stateless_uniform([6], seed)
    area = (0.05 + 0.2 * u[1]) * size * size
    aspect = tf.exp((u[2] - 0.5) * 1.5)
    h = tf.clip_by_value(tf.sqrt(area * aspect), 4.0, size - 1.0)
    w = tf.clip_by_value(tf.sqrt(area / aspect), 4.0, size - 1.0)
    y0 = u[3] * (size - h)
    x0 = u[4] * (size - w)
    grid = tf.range(size, dtype=tf.float32)
    inside = ((grid[:, None] >= y0) & (grid[:, None] < y0 + h)) & ((grid[None, :] >= x0) & (grid[None, :] < x0 + w))
    noise = tf.random.stateless_uniform([size, size, 3], seed + 1)
    erased = tf.where(inside[..., None], noise, image)
    return tf.where(u[0] < cfg.erase_prob, erased, image)


# EXIF orientation 1-8 as (transpose first, then reverse these axes): 1 as is, 2 mirrored, 3 rotated 180, 4 flipped,
# 5 transposed, 6 rotated 90 clockwise, 7 transverse, 8 rotated 90 counter-clockwise.
_EXIF_TURNS = ((False, ()), (False, (1,)), (False, (0, 1)), (False, (0,)),
               (True, ()), (True, (1,)), (True, (0, 1)), (True, (0,)))


def apply_exif_orientation(image: tf.Tensor, orientation: int | tf.Tensor) -> tf.Tensor:
    """Turn a decoded (H, W, C) image the way EXIF `orientation` (1-8) says a viewer shows it. Plain transposes
    and reversals: `tf.image.rot90`'s checks made each of the eight branches costly to build."""
    def turned(transpose: bool, axes: tuple[int, ...]):
        def branch():
            out = tf.transpose(image, [1, 0, 2]) if transpose else image
            return tf.reverse(out, list(axes)) if axes else out
        return branch

    branches = [turned(*turn) for turn in _EXIF_TURNS]
    return tf.switch_case(tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7), branches)


def _opencv_rgb(path) -> np.ndarray:
    path = np.asarray(path).item().decode()
    image = imread_color(path)
    if image is None:
        raise ValueError(f"{path}: OpenCV cannot decode it")  # dropped by the pipeline's ignore_errors
    return np.ascontiguousarray(image[..., ::-1])


class LandmarkPipeline:
    """Builds tf.data datasets of (image, targets) from samples.

    Images come out float32 in [0, 1], RGB, image_size^2; targets is a dict with `landmarks`
    (N, 2, normalised), `heatmaps` (H, W, N), `edges` (H, W, E), `affine` (2, 3 forward crop matrix)
    and `index` (position in `samples`).
    """

    def __init__(self, scheme: LandmarkScheme, config: PipelineConfig | None = None):
        self.scheme = scheme
        self.config = config or PipelineConfig()
        self.flip_perm = tf.constant(scheme.flip_permutation(), tf.int32)
        self._plans: dict[str, int] = {}  # image path -> records.decode_plan, read once per pipeline

    def _plan(self, path: str) -> int:
        if path not in self._plans:
            self._plans[path] = decode_plan(path)
        return self._plans[path]

    @staticmethod
    def _load(path, plan, turned: bool = True):
        """Decode as `records.decode_plan` says: OpenCV for TIFF/WebP, else TensorFlow plus EXIF orientation
        (left out of the graph when `turned` is False: no image of the dataset has one other than upright)."""
        def with_tensorflow():
            data = tf.io.read_file(path)
            # INTEGER_ACCURATE is libjpeg's default, which OpenCV uses: the same pixels as `predict` reads.
            image = tf.cond(tf.io.is_jpeg(data),
                            lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                            lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
            image = tf.ensure_shape(image, [None, None, 3])
            return apply_exif_orientation(image, plan) if turned else image

        def with_opencv():
            image = tf.numpy_function(_opencv_rgb, [path], tf.uint8, stateful=False)
            return tf.ensure_shape(image, [None, None, 3])

        image = tf.cond(plan == 0, with_opencv, with_tensorflow)
        return tf.cast(image, tf.float32) / 255.0

    def _example(self, index, path, plan, points, box, seed, augment: bool, images_only: bool = False,
                 teacher_size: int | None = None, turned: bool = True):
        cfg = self.config
        image = self._load(path, plan, turned)
        side = box[2] * (1 + cfg.crop_margin)
        if augment:
            seeds = tf.random.experimental.stateless_split(seed, 8)
            u = tf.random.stateless_uniform([5], seeds[0])
            if cfg.rotation_normal:
                angle = tf.clip_by_value(tf.random.stateless_normal([], seeds[7]), -2.0, 2.0) * math.radians(cfg.rotation)
            else:
                angle = (u[0] * 2 - 1) * math.radians(cfg.rotation)
            scale = 1 + (u[1] * 2 - 1) * cfg.scale
            tx = (u[2] * 2 - 1) * cfg.translation
            ty = (u[3] * 2 - 1) * cfg.translation
            flip = (u[4] < 0.5) & cfg.flip
        else:
            angle, scale, tx, ty, flip = 0.0, 1.0, 0.0, 0.0, tf.constant(False)

        def augmented_crop(size: int):
            """The face under this sample's augmentation, cut at `size` px (shift and blur scale with it)."""
            matrix = crop_matrix(box[0], box[1], side, size, angle, scale, tx * size, ty * size, flip, xp=tf)
            crop = warp(image, matrix, size)
            if augment:
                crop = _photometric(crop, seeds[1:6], cfg, size / cfg.image_size)
                crop = _erase(crop, seeds[6], cfg, size)
                crop = tf.clip_by_value(crop, 0.0, 1.0)
            crop.set_shape([size, size, 3])
            return crop, matrix

        crop, matrix = augmented_crop(cfg.image_size)
        teacher_crop = augmented_crop(teacher_size)[0] if teacher_size else None
        if images_only:
            return crop if teacher_crop is None else (crop, teacher_crop)
        pts = tf.matmul(points, matrix[:, :2], transpose_b=True) + matrix[:, 2]
        pts = tf.where(flip, tf.gather(pts, self.flip_perm), pts)
        hm_pts = pixels_to_heatmap(pts, cfg.heatmap_stride)
        size = cfg.heatmap_size
        targets = {
            "landmarks": heatmap_to_normalised(hm_pts, size),
            "heatmaps": gaussian_maps(hm_pts, size, cfg.sigma),
            "edges": edge_maps(hm_pts, self.scheme, size, cfg.edge_sigma),
            "affine": matrix,
            "index": index,
        }
        if teacher_crop is not None:
            targets["teacher_images"] = teacher_crop
        return crop, targets

    def dataset(self, samples: list[Sample], batch_size: int, training: bool, seed: int = 0,
                repeat: bool = False, drop_remainder: bool | None = None, augment: bool | None = None,
                images_only: bool = False, teacher_size: int | None = None) -> tf.data.Dataset:
        """`training` shuffles and (unless `augment=False`) augments; evaluation keeps order. `images_only`
        yields the crops alone, without building targets (unlabelled photos for L_KD). `teacher_size` also cuts
        each face at a distillation teacher's larger input size, same augmentation, so the teacher sees the
        detail the student's crop lacks: as `targets["teacher_images"]`, or as (crop, teacher crop) with
        `images_only`."""
        augment = training if augment is None else augment
        if not samples:
            raise ValueError("no samples to build a dataset from")
        n = len(samples)
        paths = tf.constant([s.image_path for s in samples])
        plan_list = [self._plan(s.image_path) for s in samples]
        plans = tf.constant(plan_list, tf.int32)
        turned = any(plan > 1 for plan in plan_list)
        points = tf.constant(np.stack([s.landmarks for s in samples]).astype(np.float32))
        boxes = tf.constant(crop_boxes(samples))
        ds = tf.data.Dataset.range(n)
        if repeat:
            ds = ds.repeat()
        if training:
            ds = ds.shuffle(min(n, 10000), seed=seed, reshuffle_each_iteration=True)
        # One stateless seed per element, itself deterministic given `seed`.
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds))

        # Not converted by AutoGraph: the example's branches are Python flags or explicit tf.cond, and converting
        # its source cost each dataset ~0.5 s (~2.5 s for a process's first), same ops either way.
        @tf.autograph.experimental.do_not_convert
        def fn(i, s):
            return self._example(tf.cast(i, tf.int32), tf.gather(paths, i), tf.gather(plans, i), tf.gather(points, i),
                                 tf.gather(boxes, i), s, augment, images_only, teacher_size, turned)

        ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.ignore_errors()  # last line of defence: a file that broke after validation is dropped, not fatal
        ds = ds.batch(batch_size, drop_remainder=training if drop_remainder is None else drop_remainder)
        return ds.prefetch(tf.data.AUTOTUNE)
