"""The scene description must match R1-V's text byte for byte: the teacher prompt is built on it."""

from __future__ import annotations

from tracemill.problems.clevr import describe_scene

# R1-V's example (seeds/000): image CLEVR_trainA_048403.png.
EXAMPLE = (
    "Scene Description:\n"
    "A large red rubber cylinder rotated 291.3° located at 3D coordinates (-0.89, -2.73, 0.70) "
    "and pixel coordinates (101, 152, 10.04)\n"
    "A small purple metal sphere rotated 247.7° located at 3D coordinates (2.93, 0.87, 0.35) "
    "and pixel coordinates (379, 183, 9.66)\n"
    "A large cyan rubber cylinder rotated 114.5° located at 3D coordinates (-2.40, 2.23, 0.70) "
    "and pixel coordinates (246, 82, 13.94)\n"
    "A small red metal cylinder rotated 109.9° located at 3D coordinates (-0.95, 1.77, 0.35) "
    "and pixel coordinates (270, 113, 12.83)\n"
    "A small red rubber cylinder rotated 343.7° located at 3D coordinates (-0.12, -0.74, 0.35) "
    "and pixel coordinates (209, 153, 10.82)\n"
    "A large red rubber cylinder rotated 324.5° located at 3D coordinates (-2.71, -2.21, 0.70) "
    "and pixel coordinates (84, 119, 11.59)\n"
    "A small red metal cylinder rotated 1.1° located at 3D coordinates (2.88, -0.12, 0.35) "
    "and pixel coordinates (342, 200, 9.12)\n"
    "A small gray rubber cube rotated 144.9° located at 3D coordinates (0.79, 0.98, 0.35) "
    "and pixel coordinates (299, 145, 11.19)\n"
    "A large yellow rubber cube rotated 90.0° located at 3D coordinates (-1.78, -0.31, 0.70) "
    "and pixel coordinates (180, 110, 12.05)\n"
)

# The same objects as a CLEVR scene, with the unrounded-looking values a scenes file holds.
OBJECTS = [
    ("large", "red", "rubber", "cylinder", 291.2987, (-0.8871, -2.7302, 0.7), (101, 152, 10.0412)),
    ("small", "purple", "metal", "sphere", 247.6519, (2.9349, 0.8677, 0.35), (379, 183, 9.6551)),
    ("large", "cyan", "rubber", "cylinder", 114.4980, (-2.4013, 2.2304, 0.7), (246, 82, 13.9398)),
    ("small", "red", "metal", "cylinder", 109.9377, (-0.9479, 1.7710, 0.35), (270, 113, 12.8324)),
    ("small", "red", "rubber", "cylinder", 343.7001, (-0.1188, -0.7423, 0.35), (209, 153, 10.8187)),
    ("large", "red", "rubber", "cylinder", 324.5412, (-2.7081, -2.2098, 0.7), (84, 119, 11.5907)),
    ("small", "red", "metal", "cylinder", 1.0987, (2.8812, -0.1241, 0.35), (342, 200, 9.1213)),
    ("small", "gray", "rubber", "cube", 144.8999, (0.7853, 0.9822, 0.35), (299, 145, 11.1876)),
    ("large", "yellow", "rubber", "cube", 90.0421, (-1.7761, -0.3149, 0.7), (180, 110, 12.0533)),
]


def example_scene() -> dict:
    objects = [
        {
            "size": size,
            "color": color,
            "material": material,
            "shape": shape,
            "rotation": rotation,
            "3d_coords": list(coords),
            "pixel_coords": list(pixels),
        }
        for size, color, material, shape, rotation, coords, pixels in OBJECTS
    ]
    return {"image_filename": "CLEVR_trainA_048403.png", "objects": objects}


def test_description_matches_r1v_example_byte_for_byte() -> None:
    text = describe_scene(example_scene())
    assert text == EXAMPLE
    assert text.encode() == EXAMPLE.encode()


def test_default_order_is_scene_order() -> None:
    lines = describe_scene(example_scene()).splitlines()
    assert lines[0] == "Scene Description:"
    assert lines[1:] == EXAMPLE.splitlines()[1:]
    assert describe_scene(example_scene(), None) == EXAMPLE


def test_shuffle_is_seeded_permutation() -> None:
    scene = example_scene()
    shuffled = describe_scene(scene, shuffle_seed=7)
    assert shuffled == describe_scene(scene, shuffle_seed=7)
    assert shuffled.startswith("Scene Description:\n") and shuffled.endswith("\n")
    assert sorted(shuffled.splitlines()[1:]) == sorted(EXAMPLE.splitlines()[1:])
    assert shuffled != EXAMPLE
    orders = {describe_scene(scene, shuffle_seed=seed) for seed in range(10)}
    assert len(orders) > 1


def test_empty_scene_is_just_the_header() -> None:
    assert describe_scene({"objects": []}) == "Scene Description:\n"
