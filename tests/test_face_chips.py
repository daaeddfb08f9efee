import numpy as np
import pytest

from conftest import posed_face
from landmark_kd.errors import ConfigError, DataError
from landmark_kd.face_chips import chip_matrix, chip_points, chip_template, face_chip, five_points, similarity_matrix
from landmark_kd.schemes import convert_68_to_51, custom_scheme, get_scheme


def test_similarity_matrix_recovers_a_known_similarity_and_never_mirrors(rng):
    source = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.7, 1.8, np.array([12.0, -30.0])
    truth = np.hstack([scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]),
                       shift[:, None]])
    target = source @ truth[:, :2].T + truth[:, 2]
    np.testing.assert_allclose(similarity_matrix(source, target), truth, atol=1e-9)
    mirrored = target * [-1, 1]  # the best fit of a mirror image is still a rotation, not a reflection
    assert np.linalg.det(similarity_matrix(source, mirrored)[:, :2]) > 0
    with pytest.raises(DataError, match="coincide"):
        similarity_matrix(np.ones((5, 2)), target)
    with pytest.raises(DataError, match="not finite"):
        similarity_matrix(np.full((5, 2), np.nan), target)


@pytest.mark.parametrize("roll", [0.0, 35.0, 180.0])
def test_a_tilted_face_comes_out_upright_on_the_reference_points(roll):
    """A frontal face at any roll (upside down too) gives a chip whose eye line is level, eyes above the mouth,
    its five points within a pixel of ArcFace's: the layout's numbering, not the image, says which eye is which."""
    points = posed_face(0.0, roll=roll)
    for layout, landmarks in (("68", points), ("51", convert_68_to_51(points))):
        m = chip_matrix(landmarks, layout, 112)
        placed = five_points(chip_points(landmarks, m), layout)
        assert np.abs(placed - chip_template(112)).max() < 1.5, (layout, roll, placed)
        (lx, ly), (rx, ry) = placed[:2]
        assert lx < rx and abs(np.degrees(np.arctan2(ry - ly, rx - lx))) < 1.0
    sizes = {size: chip_points(points, chip_matrix(points, "68", size)) for size in (112, 224)}
    np.testing.assert_allclose(sizes[224] + 0.5, 2 * (sizes[112] + 0.5), atol=1e-6)  # the same chip, twice as fine


def test_padding_shrinks_the_face_about_the_chip_centre():
    points = posed_face(0.0)
    tight, loose = (five_points(chip_points(points, chip_matrix(points, "68", 128, p)), "68") for p in (0.0, 0.25))
    centre = 63.5
    np.testing.assert_allclose(loose - centre, (tight - centre) / 1.25, atol=1e-6)


def test_a_layout_that_numbers_the_eyes_the_other_way_still_gives_an_unmirrored_chip():
    """COFW's 29 points: the pupils and mouth corners given right-to-left; the chip's first reference point
    still gets the eye on the image's left."""
    points = posed_face(0.0, roll=20.0)
    eyes = five_points(points, "68")
    cofw = np.zeros((29, 2))
    cofw[16], cofw[17] = eyes[1], eyes[0]  # swapped
    cofw[22], cofw[23] = eyes[4], eyes[3]
    cofw[[i for i in range(29) if i not in (16, 17, 22, 23)]] = eyes[2]  # filler
    m = chip_matrix(cofw, "29", 112)
    placed = chip_points(cofw, m)
    template = chip_template(112)
    assert np.linalg.det(m[:, :2]) > 0
    np.testing.assert_allclose(placed[[17, 16, 23, 22]], template[[0, 1, 3, 4]], atol=2.0)


def test_face_chip_keeps_the_channels_and_blacks_out_what_lies_outside_the_image():
    image = np.full((200, 200, 3), (10, 200, 90), np.uint8)
    points = posed_face(0.0, at=(0.0, 0.0, 900.0), size=(200, 200)) - [100, 0]  # face half off the left edge
    chip = face_chip(image, points, "68", 96, padding=0.5)
    assert chip.shape == (96, 96, 3) and chip.dtype == np.uint8
    assert (chip[:, 0] == 0).all() and (chip[:, -1] == (10, 200, 90)).all()


def test_bad_layouts_sizes_and_landmarks_are_named():
    points = posed_face(0.0)
    with pytest.raises(ConfigError, match="'mine' does not name them"):
        chip_matrix(points, custom_scheme(68, name="mine"), 112)
    with pytest.raises(ConfigError, match="at least 16; got 8"):
        chip_matrix(points, "68", 8)
    with pytest.raises(ConfigError, match="padding must be between 0 and 4; got -1"):
        chip_matrix(points, "68", 112, -1)
    # a user's error like any other (landmark_kd.errors), not a bare ValueError a CLI prints as a traceback
    with pytest.raises(DataError, match=r"expected \(98, 2\) landmarks"):
        chip_matrix(points, get_scheme("wflw"), 112)
    with pytest.raises(DataError, match="not finite"):
        chip_matrix(np.full((68, 2), np.nan), "68", 112)


def test_each_layouts_five_points_are_its_own_pupils_nose_tip_and_mouth_corners():
    """Read off each built-in layout's structure: the eyes are its pupils, the nose tip ends the nose bridge on the
    midline (no mirror partner), the mouth corners are mirror partners starting a closed lip contour."""
    from landmark_kd.face_chips import FIVE_POINT_GROUPS, five_point_groups

    for name in FIVE_POINT_GROUPS:
        scheme, groups = get_scheme(name), five_point_groups(name)
        flips = dict(scheme.flip_pairs) | {b: a for a, b in scheme.flip_pairs}
        assert groups[:2] == scheme.pupils, name
        assert flips[groups[3][0]] == groups[4][0] and len(groups[3]) == len(groups[4]) == 1, name
        assert any(edge.closed and edge.indices[0] == groups[3][0] for edge in scheme.edges), name
        if groups[2] is not None:
            assert groups[2][0] not in flips and any(not edge.closed and edge.indices[-1] == groups[2][0]
                                                     for edge in scheme.edges), name


def test_the_chip_is_the_least_squares_fit_of_all_five_points(rng):
    """WFLW's 98 points: the matrix is the similarity fit of its pupils, nose tip and mouth corners (all five: the
    nose pulls the fit) onto the template."""
    template = chip_template(112)
    angle = 0.3
    rotation = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    five = template @ rotation.T + [40.0, 25.0]
    five[2] += [9.0, -4.0]  # a nose off the rigid fit
    landmarks = rng.uniform(0, 300, (98, 2))
    landmarks[[96, 97, 54, 76, 82]] = five
    m = chip_matrix(landmarks, "98", 112)
    np.testing.assert_allclose(m, similarity_matrix(five, template), atol=1e-9)
    assert np.abs(chip_points(five[:2], m) - template[:2]).max() > 0.5  # the eyes moved off: the nose counted


def test_a_layout_named_like_a_built_in_one_with_fewer_points_is_refused():
    with pytest.raises(ConfigError, match="the 30-point layout '68' does not name them"):
        chip_matrix(np.zeros((30, 2)), custom_scheme(30, name="68"), 112)
    assert chip_template(16).shape == (5, 2) and chip_template(112, 4.0).shape == (5, 2)  # the limits are allowed
    with pytest.raises(ConfigError, match="at least 16; got 15"):
        chip_template(15)
