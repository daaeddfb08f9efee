"""The distillation teacher: ensembles, flip averaging and the checks made before any work."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from landmark_kd.errors import ConfigError, MissingFileError
from landmark_kd.models import HeadConfig, build_landmark_model
from landmark_kd.schemes import custom_scheme, get_scheme
from landmark_kd.teacher import Teacher, check_teacher_files, load_teacher, teacher_paths

SCHEME = get_scheme("68")


def _tiny(seed, size=64, preset="swinv2_pico"):
    keras.utils.set_random_seed(seed)
    return build_landmark_model(preset, SCHEME, size, HeadConfig(16, 1, False))


def _images(n=2, size=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype(np.float32)


def _mirror(maps, perm):
    """What a mirror image's heatmaps look like in the original's frame: flipped left-right, left and right points swapped."""
    return maps[:, :, ::-1][..., perm]


def test_an_ensemble_teacher_gives_the_mean_of_its_models_heatmaps():
    a, b = _tiny(1), _tiny(2)
    x = _images()
    maps = Teacher([a, b]).heatmaps(tf.constant(x)).numpy()
    ha, hb = a(x, training=False)["heatmaps"].numpy(), b(x, training=False)["heatmaps"].numpy()
    assert np.abs(ha - hb).max() > 1e-3  # two different teachers
    np.testing.assert_allclose(maps, (ha + hb) / 2, atol=1e-6)
    assert not any(m.trainable for m in (a, b))


def test_a_flip_averaged_teacher_answers_a_mirror_image_with_the_mirrored_answer():
    """Averaging over an image and its mirror makes the teacher exactly mirror-consistent, whatever its weights:
    this fails if the maps are flipped on the wrong axis or the left/right points are not swapped."""
    perm = SCHEME.flip_permutation()
    model = _tiny(3)
    teacher = Teacher([model], perm)
    x = _images()
    maps = teacher.heatmaps(tf.constant(x)).numpy()
    mirrored = teacher.heatmaps(tf.constant(x[:, :, ::-1].copy())).numpy()
    np.testing.assert_allclose(_mirror(mirrored, perm), maps, atol=1e-6)
    plain = model(x, training=False)["heatmaps"].numpy()
    assert np.abs(_mirror(model(x[:, :, ::-1], training=False)["heatmaps"].numpy(), perm) - plain).max() > 1e-3
    np.testing.assert_allclose(maps, (plain + _mirror(model(x[:, :, ::-1], training=False)["heatmaps"].numpy(), perm)) / 2,
                               atol=1e-6)


def test_teacher_maps_are_resized_to_the_students_and_inputs_to_each_teachers_size():
    small, large = _tiny(4, 64), _tiny(5, 128)
    x = _images(size=64)
    maps = Teacher([small, large]).heatmaps(tf.constant(x), size=(8, 8)).numpy()
    assert maps.shape == (2, 8, 8, 68)
    big = large(tf.image.resize(x, [128, 128]), training=False)["heatmaps"]
    expected = (tf.image.resize(small(x, training=False)["heatmaps"], [8, 8]) + tf.image.resize(big, [8, 8])) / 2
    np.testing.assert_allclose(maps, expected.numpy(), atol=1e-5)


def test_a_larger_teacher_reads_the_crops_cut_at_its_own_size():
    """With the pipeline's `teacher_size` crops, a 128 px teacher reads them as they are (no upsampled 64 px
    crop) while a 64 px member of the same ensemble keeps the student's crops."""
    small, large = _tiny(4, 64), _tiny(5, 128)
    teacher = Teacher([small, large])
    assert teacher.input_size == 128 and Teacher([small]).input_size == 64
    x, big = _images(size=64, seed=1), _images(size=128, seed=2)
    maps = teacher.heatmaps(tf.constant(x), size=(16, 16), large=tf.constant(big)).numpy()
    expected = (small(x, training=False)["heatmaps"] + tf.image.resize(large(big, training=False)["heatmaps"], [16, 16])) / 2
    np.testing.assert_allclose(maps, expected.numpy(), atol=1e-5)
    upsampled = teacher.heatmaps(tf.constant(x), size=(16, 16)).numpy()
    assert np.abs(upsampled - maps).max() > 1e-3  # without them the large teacher reads the 64 px crops


def test_the_shipped_teachers_mirror_prediction_lands_on_the_same_points():
    """On real faces the mirrored pass, mapped back, agrees with the plain one to within a fraction of the
    inter-ocular distance: the heatmap flip and the point swap use the pipeline's own pixel convention."""
    from conftest import realfaces

    from benchmarks.real_faces import load_images
    from landmark_kd.data import load_dataset
    from landmark_kd.decode import soft_argmax
    from landmark_kd.inference import PRETRAINED_DIR, LandmarkDetector

    samples, _ = load_dataset(realfaces("dlib_faces/faces.json"), num_points=68)
    samples = samples[:12]
    images = load_images(samples)
    detector = LandmarkDetector(f"{PRETRAINED_DIR}/real_teacher.keras", detector="full")  # its crops, its model
    boxes = [[*s.landmarks.min(0), *s.landmarks.max(0)] for s in samples]  # the 68-point boxes
    x = tf.constant(np.concatenate([detector.crops_for_boxes(images[s.image_path], [box])[0]
                                    for s, box in zip(samples, boxes)]))
    model = detector.predictor.model
    perm = SCHEME.flip_permutation()
    plain = soft_argmax(model(x, training=False)["heatmaps"].numpy())
    flipped = model(tf.reverse(x, [2]), training=False)["heatmaps"].numpy()
    back = soft_argmax(_mirror(flipped, perm))
    wrong = soft_argmax(flipped[:, :, ::-1])  # mirrored back but left and right points not swapped
    eyes = np.linalg.norm(plain[:, 36] - plain[:, 45], axis=-1)[:, None]  # outer eye corners, heatmap pixels
    assert np.median(np.linalg.norm(back - plain, axis=-1) / eyes) < 0.04
    assert np.median(np.linalg.norm(wrong - plain, axis=-1) / eyes) > 0.2
    both = Teacher([model], perm).heatmaps(x).numpy()
    np.testing.assert_allclose(both, (model(x, training=False)["heatmaps"].numpy() + _mirror(flipped, perm)) / 2,
                               atol=1e-5)


def test_load_teacher_checks_every_model_and_the_flip_pairs(tmp_path):
    path = str(tmp_path / "t.keras")
    _tiny(6).save(path)
    teacher = load_teacher([path, path], SCHEME, flip=True)
    assert len(teacher.models) == 2 and (teacher.flip_permutation == SCHEME.flip_permutation()).all()
    with pytest.raises(ConfigError, match=r"t\.keras: teacher predicts scheme '68'"):
        load_teacher(path, get_scheme("51"))
    no_pairs = custom_scheme(68, name="plain68")
    with pytest.raises(ConfigError, match=r"teacher predicts scheme '68' \(68 points\), the student is set up for "
                       r"'plain68' \(68\)"):  # as many points, another layout
        load_teacher(path, no_pairs)
    with pytest.raises(ConfigError, match="names no flip pairs"):
        load_teacher([], no_pairs, flip=True)
    assert teacher_paths(path) == [path] and teacher_paths(None) == []
    with pytest.raises(MissingFileError, match="no teacher at .*missing.keras"):
        check_teacher_files([path, str(tmp_path / "missing.keras")])


def test_a_one_model_teacher_predicts_what_the_model_itself_predicts():
    """TeacherPredictor decodes averaged heatmaps the way the models decode their own, so scoring an ensemble
    scores what the student is taught."""
    from landmark_kd.predictor import KerasPredictor
    from landmark_kd.teacher import TeacherPredictor

    model = _tiny(7)
    crops = _images(3)
    own = KerasPredictor(model)(crops)
    np.testing.assert_allclose(TeacherPredictor(Teacher([model]))(crops), own, atol=1e-3)
    pair = TeacherPredictor(Teacher([model, _tiny(8)]))
    assert pair.image_size == 64 and pair.scheme.num_points == 68
    other, both = KerasPredictor(pair.teacher.models[1])(crops), pair(crops)
    assert np.abs(own - other).max() > 1.0
    # the mean map's soft-argmax is a mass-weighted mean of the two models' points: between them, coordinate-wise
    assert np.all(both >= np.minimum(own, other) - 1e-3) and np.all(both <= np.maximum(own, other) + 1e-3)
    # crops cut at twice the model's input: the model sees them halved, and its maps' cells are 8 crop pixels
    large = _images(3, 128, seed=1)
    halved = tf.image.resize(large, [64, 64], antialias=True).numpy()
    at_128 = TeacherPredictor(Teacher([model]), crop_size=128)
    assert at_128.image_size == 128
    np.testing.assert_allclose(at_128(large), 2 * KerasPredictor(model)(halved) + 0.5, atol=2e-3)


def test_teacher_features_are_the_first_models_on_the_crops_as_they_are():
    """Heatmaps as `heatmaps` gives them (ensemble mean, flip-averaged); features from the first model alone, on
    the unmirrored crops: channels of different models or views do not line up, so they are never averaged."""
    from landmark_kd.models import with_head_features

    first, second = _tiny(1), _tiny(2)
    teacher = Teacher([first, second], SCHEME.mirror_permutation("a test"))
    x = _images(2)
    maps, features = teacher.heatmaps_and_features(tf.constant(x), [8, 8])
    np.testing.assert_allclose(maps, teacher.heatmaps(tf.constant(x), [8, 8]), atol=1e-6)
    np.testing.assert_allclose(features, with_head_features(first)(x)["features"], atol=1e-5)
    assert teacher.feature_channels == 16 and features.shape == (2, 16, 16, 16)
