import numpy as np
import pytest
import tensorflow as tf

from landmark_kd.data import load_dataset
from landmark_kd.data.pipeline import LandmarkPipeline, PipelineConfig
from landmark_kd.data.synthetic import generate
from landmark_kd.data.targets import edge_maps, gaussian_maps
from landmark_kd.decode import crop_to_image, normalised_to_pixels
from landmark_kd.schemes import get_scheme


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    samples, _ = load_dataset(generate(str(root), 12, seed=1, size=128, sheet=False), num_points=68)
    return samples


def test_eval_crops_map_back_to_the_annotation(faces):
    pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(image_size=64))
    images, targets = next(iter(pipeline.dataset(faces, 4, training=False)))
    assert images.shape == (4, 64, 64, 3) and targets["heatmaps"].shape == (4, 16, 16, 68)
    assert targets["edges"].shape == (4, 16, 16, 9)
    assert 0 <= float(np.min(images)) and float(np.max(images)) <= 1
    px = normalised_to_pixels(targets["landmarks"].numpy(), 16, 4)
    back = crop_to_image(px, targets["affine"].numpy())
    gt = np.stack([faces[i].landmarks for i in targets["index"].numpy()])
    assert np.abs(back - gt).max() < 1e-3


def test_augmentation_is_seeded_and_flip_permutes(faces):
    pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(image_size=64))
    a = next(iter(pipeline.dataset(faces, 12, training=True, seed=3)))
    b = next(iter(pipeline.dataset(faces, 12, training=True, seed=3)))
    c = next(iter(pipeline.dataset(faces, 12, training=True, seed=4)))
    assert np.array_equal(a[0].numpy(), b[0].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())
    # After a flip (with the permutation) the left eye corner (36) stays left of the right one (45)
    # for near-frontal faces: check that the ordering holds for the large majority of augmented faces.
    lm = a[1]["landmarks"].numpy()
    assert np.mean(lm[:, 36, 0] < lm[:, 45, 0]) >= 0.75
    # heatmap peaks sit where the landmark targets say
    hm = a[1]["heatmaps"].numpy()
    i, n = 0, 30
    y, x = np.unravel_index(hm[i, :, :, n].argmax(), hm.shape[1:3])
    expected = (lm[i, n] + 1) / 2 * 15
    assert abs(x - expected[0]) <= 1 and abs(y - expected[1]) <= 1


def test_targets_values():
    pts = np.array([[3.0, 4.0], [10.0, 4.0]], np.float32)
    g = gaussian_maps(pts, 16, 1.0).numpy()
    assert g.shape == (16, 16, 2) and g[4, 3, 0] == pytest.approx(1.0) and g[4, 4, 0] == pytest.approx(np.exp(-0.5))
    scheme = get_scheme("68")
    points = np.zeros((68, 2), np.float32)
    points[0:17] = np.stack([np.linspace(2, 12, 17), np.full(17, 8.0)], -1)  # jaw: a horizontal line at y=8
    e = edge_maps(points, scheme, 16, 1.0).numpy()
    assert e.shape == (16, 16, 9)
    assert e[8, 7, 0] == pytest.approx(1.0) and e[10, 7, 0] == pytest.approx(np.exp(-2.0), rel=1e-5)
    # past the line's ends the distance is to the end point, not to the infinite line through it
    assert e[8, 14, 0] == pytest.approx(np.exp(-2.0), rel=1e-5) and e[8, 0, 0] == pytest.approx(np.exp(-2.0), rel=1e-5)
    assert e[12, 15, 0] == pytest.approx(np.exp(-12.5), rel=1e-4)  # (15, 12): 3 across and 4 down from (12, 8)
    # sigma enters squared (at sigma 1 that cannot be told from sigma itself): two cells off at sigma 2
    g2 = gaussian_maps(pts, 16, 2.0).numpy()
    assert g2[4, 5, 0] == pytest.approx(np.exp(-0.5)) and g2[6, 3, 0] == pytest.approx(np.exp(-0.5))
    assert edge_maps(points, scheme, 16, 2.0).numpy()[10, 7, 0] == pytest.approx(np.exp(-0.5), rel=1e-5)


def test_flip_swaps_left_and_right_points_and_augmentation_spans_both_ways(faces):
    """A mirrored crop's landmark targets, mapped back through its matrix, are the annotation with left and right
    points swapped by the scheme's permutation (not the same indices, nor unpermuted); `flip=False` mirrors no crop.
    Rotation and scale are drawn on both sides of none, within their bounds, about the face box's square side."""
    from landmark_kd.crop import CROP_MARGIN

    perm = get_scheme("68").flip_permutation()
    for flip in (True, False):
        cfg = PipelineConfig(image_size=64, flip=flip)
        _, targets = next(iter(LandmarkPipeline(get_scheme("68"), cfg).dataset(faces, 12, training=True, seed=3)))
        affine = targets["affine"].numpy()
        mirrored = np.linalg.det(affine[:, :, :2]) < 0
        back = crop_to_image(normalised_to_pixels(targets["landmarks"].numpy(), 16, 4), affine)
        gt = np.stack([faces[i].landmarks for i in targets["index"].numpy()])
        assert np.abs(back - np.where(mirrored[:, None, None], gt[:, perm], gt)).max() < 1e-2
        assert 2 <= mirrored.sum() <= 10 if flip else not mirrored.any()
    boxes = np.array([faces[i].face_box() for i in targets["index"].numpy()], np.float64)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * (1 + CROP_MARGIN)
    scale = 64 / (side * np.sqrt(np.abs(np.linalg.det(affine[:, :, :2]))))
    assert np.all(np.abs(scale - 1) <= cfg.scale + 1e-4) and scale.min() < 0.97 and scale.max() > 1.03
    angles = np.degrees(np.arctan2(affine[:, 1, 0], affine[:, 1, 1]))
    assert np.all(np.abs(angles) <= cfg.rotation + 1e-3) and angles.min() < -5 and angles.max() > 5



def test_gamma_occlusion_and_gaussian_rotation_stay_within_their_ranges(faces):
    """With every other augmentation off: gamma maps each crop's pixels to p ** g, g in [1/(1+gamma), 1+gamma], some
    below 1 and some above; random erasing replaces one rectangle of 5-25% of the crop (to whole pixels); Gaussian
    angles are clipped at two sigma, and over 120 draws some reach it."""
    still = dict(image_size=32, rotation=0.0, scale=0.0, translation=0.0, flip=False, blur_prob=0.0, erase_prob=0.0,
                 color_jitter=0.0)

    def batch(samples, **changes):
        pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(**{**still, **changes}))
        return next(iter(pipeline.dataset(samples, len(samples), training=True, seed=4)))

    plain = next(iter(LandmarkPipeline(get_scheme("68"), PipelineConfig(**still)).dataset(faces, 12, training=False)))
    plain = plain[0].numpy().astype(np.float64)
    images, targets = batch(faces, gamma=0.5)
    before, after = plain[targets["index"].numpy()], images.numpy().astype(np.float64)
    mid = (before > 0.05) & (before < 0.95) & (after > 0.05) & (after < 0.95)
    gammas = []
    for b, a, m in zip(before, after, mid):
        g = np.median(np.log(a[m]) / np.log(b[m]))
        assert np.abs(np.log(a[m]) - g * np.log(b[m])).max() < 0.01
        gammas.append(g)
    assert 1 / 1.5 - 1e-3 <= min(gammas) < 0.95 and 1.05 < max(gammas) <= 1.5 + 1e-3  # both ways
    images, targets = batch(faces, erase_prob=1.0)
    changed = np.any(np.abs(images.numpy() - plain[targets["index"].numpy()]) > 1e-4, axis=-1)
    for mask in changed:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        box = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        assert 0.04 <= mask.mean() <= 0.29 and mask.sum() >= 0.95 * box  # 0.25 plus a row and a column
    _, targets = batch(faces * 10, image_size=16, rotation=10.0, rotation_normal=True)
    affine = targets["affine"].numpy()
    angles = np.abs(np.degrees(np.arctan2(affine[:, 1, 0], affine[:, 1, 1])))
    assert angles.max() <= 20 + 1e-3 and np.sum(angles > 20 - 1e-3) >= 1


def test_corrupted_image_after_validation_is_dropped_not_fatal(faces, tmp_path):
    import shutil
    bad = [type(f)(f.image_path, f.landmarks, f.bbox, f.source) for f in faces[:4]]
    broken = str(tmp_path / "broken.png")
    shutil.copy(faces[0].image_path, broken)
    with open(broken, "r+b") as handle:  # valid PNG signature, corrupt body
        handle.seek(40)
        handle.write(b"\x00" * 200)
        handle.truncate(300)
    bad[1].image_path = broken
    pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(image_size=32))
    batches = list(pipeline.dataset(bad, 4, training=False))
    count = sum(int(b[0].shape[0]) for b in batches)
    assert count == 3


def test_real_photo_augmentation_keeps_landmarks_on_the_face(tmp_path):
    """Grey always on (occlusion off): every crop is grey; Gaussian rotation and gamma keep images in [0, 1] and
    the landmark targets consistent with the heatmaps."""
    from landmark_kd.data import load_dataset
    from landmark_kd.data.synthetic import generate
    from landmark_kd.decode import soft_argmax

    samples, _ = load_dataset(generate(str(tmp_path / "f"), 8, seed=2, size=96, sheet=False), num_points=68)
    cfg = PipelineConfig.real_photos(image_size=64, grey_prob=1.0, erase_prob=0.0)
    assert cfg.rotation_normal and cfg.gamma > 0 and cfg.grey_prob == 1.0
    images, targets = next(iter(LandmarkPipeline(get_scheme("68"), cfg).dataset(samples, 8, training=True, seed=3)))
    images = images.numpy()
    assert images.min() >= 0 and images.max() <= 1
    assert np.allclose(images[..., 0], images[..., 1], atol=1e-5) and np.allclose(images[..., 1], images[..., 2], atol=1e-5)
    size = cfg.heatmap_size
    from_maps = soft_argmax(targets["heatmaps"].numpy()) / (size - 1) * 2 - 1
    inside = np.all(np.abs(targets["landmarks"].numpy()) < 0.7, axis=-1)  # maps cut by the crop edge bias soft-argmax
    assert np.abs(from_maps - targets["landmarks"].numpy())[inside].max() < 0.05
    angles = np.degrees(np.arctan2(targets["affine"].numpy()[:, 1, 0], targets["affine"].numpy()[:, 1, 1]))
    assert np.all(np.abs(angles) <= 2 * cfg.rotation + 1e-3) and np.std(angles) > 3


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """A JPEG with an EXIF block whose only tag is the orientation, as phones write it."""
    entry = (274).to_bytes(2, "little") + (3).to_bytes(2, "little") + (1).to_bytes(4, "little")
    tiff = b"II*\x00" + (8).to_bytes(4, "little") + (1).to_bytes(2, "little") + entry
    tiff += orientation.to_bytes(2, "little") + b"\0\0" + b"\0\0\0\0"
    block = b"Exif\0\0" + tiff
    return jpeg[:2] + b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block + jpeg[2:]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_pipeline_decodes_like_opencv_with_exif_orientation(tmp_path, orientation):
    """Training and evaluation see the pixels `predict` (cv2.imread) sees, phone rotation included."""
    import cv2
    import tensorflow as tf

    from landmark_kd.data.records import decode_plan

    rng = np.random.default_rng(orientation)
    image = cv2.resize((rng.random((6, 10, 3)) * 255).astype(np.uint8), (50, 30), interpolation=cv2.INTER_NEAREST)
    path = str(tmp_path / "phone.jpg")
    with open(path, "wb") as handle:
        handle.write(_with_exif_orientation(cv2.imencode(".jpg", image)[1].tobytes(), orientation))
    assert decode_plan(path) == orientation
    decoded = LandmarkPipeline._load(tf.constant(path), tf.constant(decode_plan(path))).numpy() * 255
    expected = cv2.imread(path)[..., ::-1]
    assert decoded.shape == expected.shape == ((30, 50, 3) if orientation < 5 else (50, 30, 3))
    assert np.abs(decoded - expected).max() < 0.01


def test_a_dataset_turns_its_one_phone_photo_and_an_upright_one_is_cut_alike(tmp_path):
    """A dataset leaves the orientation switch out when no image needs it: a turned JPEG among upright ones is
    still turned (its crop is that of its upright PNG twin), and an upright face is cut the same with or without
    a turned one beside it."""
    import cv2

    from landmark_kd.data.records import Sample

    rng = np.random.default_rng(6)
    image = cv2.resize((rng.random((8, 12, 3)) * 255).astype(np.uint8), (120, 80), interpolation=cv2.INTER_NEAREST)
    upright, turned, twin = (str(tmp_path / name) for name in ("upright.jpg", "phone.jpg", "twin.png"))
    cv2.imwrite(upright, image)
    with open(turned, "wb") as handle:
        handle.write(_with_exif_orientation(cv2.imencode(".jpg", image)[1].tobytes(), 6))
    cv2.imwrite(twin, cv2.imread(turned))  # the turned picture as cv2.imread shows it, lossless
    points = rng.uniform(20, 60, (68, 2)).astype(np.float32)
    box = np.array([10, 10, 70, 70], np.float32)
    pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(image_size=32))

    def crops(paths):
        samples = [Sample(path, points, box, "face") for path in paths]
        return next(iter(pipeline.dataset(samples, len(samples), training=False)))[0].numpy()

    mixed, alone, reference = crops([upright, turned]), crops([upright]), crops([twin])
    assert np.array_equal(mixed[0], alone[0])
    assert np.abs(mixed[1] - reference[0]).max() < 1e-5
    assert np.abs(mixed[1] - mixed[0]).max() > 0.1  # the turned photo is not cut as if upright


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_pipeline_decodes_like_opencv_with_a_png_exif_orientation(tmp_path, orientation):
    """cv2.imread (predict, a .tflite's evaluate) turns a PNG by its eXIf chunk; training did not, so it learnt
    the labels of the turned picture on the unturned one. The chunk may come after the image data."""
    import zlib

    import cv2
    import tensorflow as tf

    from landmark_kd.data.records import inspect_image_file, decode_plan

    image = cv2.resize((np.random.default_rng(orientation).random((6, 10, 3)) * 255).astype(np.uint8), (50, 30),
                       interpolation=cv2.INTER_NEAREST)
    png = cv2.imencode(".png", image)[1].tobytes()
    tiff = _with_exif_orientation(b"\xff\xd8", orientation)[12:]  # the EXIF block's TIFF structure
    chunk = len(tiff).to_bytes(4, "big") + b"eXIf" + tiff + zlib.crc32(b"eXIf" + tiff).to_bytes(4, "big")
    path = str(tmp_path / "turned.png")
    with open(path, "wb") as handle:
        handle.write(png[:-12] + chunk + png[-12:])  # before IEND
    assert decode_plan(path) == orientation
    decoded = LandmarkPipeline._load(tf.constant(path), tf.constant(decode_plan(path))).numpy() * 255
    expected = cv2.imread(path)[..., ::-1]
    assert decoded.shape == expected.shape == ((30, 50, 3) if orientation < 5 else (50, 30, 3))
    assert np.abs(decoded - expected).max() < 0.01
    assert inspect_image_file(path) == (None, expected.shape[1::-1])  # the size the labels refer to


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_tiff_turned_by_its_orientation_tag_is_read_everywhere_and_checked_turned(tmp_path, orientation):
    """OpenCV 4.11's imread fails on a TIFF whose Orientation tag turns it a quarter (5-8): `predict` said
    "cannot read image" and training dropped the face; the inside-image check took the unturned size."""
    import cv2
    from PIL import Image, TiffImagePlugin

    from landmark_kd.data.records import inspect_image_file, read_bgr

    image = cv2.resize((np.random.default_rng(orientation).random((6, 10, 3)) * 255).astype(np.uint8), (50, 30),
                       interpolation=cv2.INTER_NEAREST)
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[274] = orientation
    path = str(tmp_path / "scan.tif")
    Image.fromarray(image).save(path, tiffinfo=tags)
    turned = {3: image[::-1, ::-1], 6: np.rot90(image, -1), 8: np.rot90(image, 1)}[orientation]
    assert np.array_equal(read_bgr(path)[..., ::-1], turned)
    decoded = LandmarkPipeline._load(tf.constant(path), tf.constant(0)).numpy() * 255
    assert np.abs(decoded - turned).max() < 0.01
    assert inspect_image_file(path) == (None, turned.shape[1::-1])


def test_tiff_and_webp_beside_pts_files_train_like_png(tmp_path):
    """The same face saved as PNG, TIFF and WebP (lossless) gives the same crop and targets."""
    import cv2

    from landmark_kd.data.pts300w import write_pts

    faces = generate(str(tmp_path / "src"), 1, seed=3, size=96, sheet=False)
    samples, _ = load_dataset(faces, num_points=68)
    image = cv2.imread(samples[0].image_path)
    folder = tmp_path / "mixed"
    folder.mkdir()
    for ext, flags in ((".png", []), (".tif", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])):
        cv2.imwrite(str(folder / f"face{ext[1:]}{ext}"), image, flags)
        write_pts(str(folder / f"face{ext[1:]}.pts"), samples[0].landmarks)
    mixed, report = load_dataset(str(folder), num_points=68)
    assert sorted(s.image_path[-4:] for s in mixed) == [".png", ".tif", "webp"] and not report.skipped
    pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(image_size=64))
    crops, targets = next(iter(pipeline.dataset(mixed, 3, training=False)))
    assert np.abs(crops[0] - crops[1]).max() < 1e-6 and np.abs(crops[0] - crops[2]).max() < 1e-6
    assert float(crops.numpy().std()) > 0.05  # real pixels, not a blank fallback


def test_a_teacher_crop_is_the_same_augmented_face_at_the_teachers_size(faces):
    """Distilling from a larger-input teacher: the student's crops stay exactly what they are without a teacher,
    and the teacher's crop is the same face, pose, colour and blur at twice the size, so shrunk it matches."""
    cfg = PipelineConfig.real_photos(image_size=64, erase_prob=0.0, blur_prob=1.0)
    pipeline = LandmarkPipeline(get_scheme("68"), cfg)
    plain, plain_targets = next(iter(pipeline.dataset(faces, 12, training=True, seed=5)))
    images, targets = next(iter(pipeline.dataset(faces, 12, training=True, seed=5, teacher_size=128)))
    assert np.array_equal(images.numpy(), plain.numpy())
    assert np.array_equal(targets["landmarks"].numpy(), plain_targets["landmarks"].numpy())
    large = targets["teacher_images"].numpy()
    assert large.shape == (12, 128, 128, 3) and 0 <= large.min() and large.max() <= 1
    shrunk = tf.image.resize(large, [64, 64], antialias=True).numpy()
    aligned = np.abs(shrunk - images.numpy()).mean()
    shifted = np.abs(shrunk[:, :, 2:] - images.numpy()[:, :, :-2]).mean()  # two pixels off, for scale
    assert aligned < 0.02 and aligned < 0.4 * shifted
    crops, teacher_crops = next(iter(pipeline.dataset(faces, 12, training=True, seed=5, images_only=True,
                                                      teacher_size=128)))
    assert np.array_equal(crops.numpy(), images.numpy()) and np.array_equal(teacher_crops.numpy(), large)


def test_a_face_far_larger_than_the_crop_trains_and_scores_on_block_averaged_crops(tmp_path):
    """`predict` block-averages a face it shrinks below half (crop.warp_square); training and evaluation cut it
    bilinearly, aliased, so a model trained on high-resolution photos met other crops in use. The pipeline's
    crop, augmented or not, and evaluate's TensorFlow-free crop now match warp_square's to rounding."""
    import cv2

    from landmark_kd.crop import warp_square
    from landmark_kd.data.records import Sample
    from landmark_kd.evaluate import opencv_batches

    noise = (np.random.default_rng(0).random((900, 1200, 3)) * 255).astype(np.uint8)
    path = str(tmp_path / "large.png")
    cv2.imwrite(path, noise)
    points = np.random.default_rng(1).uniform(300, 800, (68, 2)).astype(np.float32)
    sample = Sample(path, points, np.array([300, 200, 900, 800], np.float32), "large")
    pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(image_size=64))
    rgb = noise[..., ::-1].astype(np.float32) / 255.0
    for augment in (False, True):
        crops, targets = next(iter(pipeline.dataset([sample], 1, training=True, augment=augment, seed=3)))
        if augment:  # photometric jitter moves the values: compare before it, through the same matrix
            from landmark_kd.data.pipeline import warp

            crop = warp(tf.constant(rgb), targets["affine"][0], 64).numpy()
        else:
            crop = crops.numpy()[0]
        expected = warp_square(rgb, targets["affine"].numpy()[0], 64)
        assert np.abs(crop - expected).mean() < 2e-3 and np.abs(crop - expected).max() < 0.02
        assert crop[16:48, 16:48].std() < 0.05  # averaged; bilinear sampling of the noise keeps its std of 0.29
    board, _ = next(opencv_batches([sample], 64, 1))
    eval_crops, _ = next(iter(pipeline.dataset([sample], 1, training=False)))
    assert np.abs(board[0] - eval_crops.numpy()[0]).mean() < 2e-3


def test_colour_jitter_outside_0_to_1_is_refused_by_name():
    """At 1 or more, the contrast and saturation factors reach 0 or below and TensorFlow failed inside the dataset."""
    from landmark_kd.errors import ConfigError

    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match=f"color_jitter {bad}: must be at least 0 and below 1"):
            PipelineConfig(color_jitter=bad)
