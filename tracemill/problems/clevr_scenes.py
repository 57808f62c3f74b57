"""Seeded procedural scenes that follow CLEVR's placement rules, camera and relationships.

Without rendering, a scene is only its objects' attributes and coordinates; generating them the
way CLEVR's ``render_images.py`` does gives scene descriptions with CLEVR's statistics, as many as
wanted, with no dataset download. Each scene depends only on (seed, index), so any worker can
build any range of scenes.
"""

from __future__ import annotations

import math
import random
from typing import Any

from tracemill.problems.clevr_program import RELATIONS, VOCABULARY
from tracemill.seeds import derive_seed

SIZES = {"large": 0.7, "small": 0.35}  # radius of each size
MIN_DIST = 0.25  # least ground gap between two objects
MARGIN = 0.4  # least separation along each cardinal direction
MAX_RETRIES = 50  # tries to place one object before the whole scene starts over
RELATION_EPS = 0.2  # CLEVR's threshold for "left of", "behind", ...

# CLEVR's Blender camera (base_scene.blend), without jitter.
CAMERA_LOCATION = (7.358891487121582, -6.925790786743164, 4.958309173583984)
CAMERA_EULER_DEG = (63.559, 0.620, 46.692)
FOCAL_MM, SENSOR_MM = 35.0, 32.0
WIDTH, HEIGHT = 480, 320

Vector = tuple[float, float, float]
Matrix = tuple[tuple[float, ...], ...]


def _camera_rotation() -> Matrix:
    """R = Rz·Ry·Rx from Blender's XYZ Euler angles; columns are the camera's axes in world space."""
    ax, ay, az = (math.radians(a) for a in CAMERA_EULER_DEG)
    rx = ((1, 0, 0), (0, math.cos(ax), -math.sin(ax)), (0, math.sin(ax), math.cos(ax)))
    ry = ((math.cos(ay), 0, math.sin(ay)), (0, 1, 0), (-math.sin(ay), 0, math.cos(ay)))
    rz = ((math.cos(az), -math.sin(az), 0), (math.sin(az), math.cos(az), 0), (0, 0, 1))
    return _matmul(rz, _matmul(ry, rx))


def _matmul(a: Matrix, b: Matrix) -> Matrix:
    return tuple(tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3))


def _rotate(r: Matrix, v: Vector) -> Vector:
    return (
        r[0][0] * v[0] + r[0][1] * v[1] + r[0][2] * v[2],
        r[1][0] * v[0] + r[1][1] * v[1] + r[1][2] * v[2],
        r[2][0] * v[0] + r[2][1] * v[1] + r[2][2] * v[2],
    )


def _on_ground(v: Vector) -> Vector:
    """``v`` projected onto the ground plane (z = 0) and normalised."""
    norm = math.hypot(v[0], v[1])
    return (v[0] / norm, v[1] / norm, 0.0)


CAMERA_ROTATION = _camera_rotation()
_BEHIND = _on_ground(_rotate(CAMERA_ROTATION, (0.0, 0.0, -1.0)))
_LEFT = _on_ground(_rotate(CAMERA_ROTATION, (-1.0, 0.0, 0.0)))
DIRECTIONS: dict[str, Vector] = {
    "behind": _BEHIND,
    "front": (-_BEHIND[0], -_BEHIND[1], 0.0),
    "left": _LEFT,
    "right": (-_LEFT[0], -_LEFT[1], 0.0),
    "above": (0.0, 0.0, 1.0),
    "below": (0.0, 0.0, -1.0),
}


def project(point: Vector) -> tuple[int, int, float]:
    """Pixel coordinates and depth of a world point, as Blender's ``world_to_camera_view`` gives them."""
    r = CAMERA_ROTATION
    d = (point[0] - CAMERA_LOCATION[0], point[1] - CAMERA_LOCATION[1], point[2] - CAMERA_LOCATION[2])
    # c = Rᵀ·d: the point in camera coordinates; the camera looks along its -Z.
    cx = r[0][0] * d[0] + r[1][0] * d[1] + r[2][0] * d[2]
    cy = r[0][1] * d[0] + r[1][1] * d[1] + r[2][1] * d[2]
    cz = r[0][2] * d[0] + r[1][2] * d[1] + r[2][2] * d[2]
    depth = -cz
    scale = FOCAL_MM / SENSOR_MM
    x_ndc = cx / depth * scale + 0.5
    y_ndc = cy / depth * scale * WIDTH / HEIGHT + 0.5
    return round(x_ndc * WIDTH), round(HEIGHT - y_ndc * HEIGHT), depth


def derived_rng(seed: int, index: int, purpose: str) -> random.Random:
    """A generator for one scene and one purpose, independent of every other scene."""
    return random.Random(derive_seed(purpose, seed, index, bits=128))


def generate_scene(
    seed: int, index: int, *, min_objects: int = 3, max_objects: int = 10, split: str = "train"
) -> dict[str, Any]:
    """Scene ``index`` of ``seed``, laid out like a CLEVR scenes-file entry (no image is rendered)."""
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects} and {max_objects}")
    rng = derived_rng(seed, index, "scene")
    count = rng.randint(min_objects, max_objects)
    objects = None
    while objects is None:  # CLEVR starts the whole scene over when one object will not fit
        objects = _place_objects(rng, count)
    return {
        "split": split,
        "image_index": index,
        "image_filename": f"CLEVR_synth_{seed}_{index:06d}.png",
        "objects": objects,
        "directions": {name: list(vector) for name, vector in DIRECTIONS.items()},
        "relationships": relationships(objects),
    }


def _place_objects(rng: random.Random, count: int) -> list[dict[str, Any]] | None:
    """CLEVR's ``add_random_objects`` without Blender, drawing in the same order; None to start over."""
    placed: list[tuple[float, float, float]] = []  # x, y and the radius later objects keep clear of
    objects: list[dict[str, Any]] = []
    for _ in range(count):
        size = rng.choice(tuple(SIZES))
        radius = SIZES[size]
        for _ in range(MAX_RETRIES):
            x, y = rng.uniform(-3, 3), rng.uniform(-3, 3)
            if _fits(x, y, radius, placed):
                break
        else:
            return None
        shape = rng.choice(VOCABULARY["shape"])
        color = rng.choice(VOCABULARY["color"])
        rotation = 360.0 * rng.random()
        material = rng.choice(VOCABULARY["material"])
        # As in CLEVR: a cube's radius shrinks by sqrt(2) once placed, for the objects placed after it.
        placed.append((x, y, radius / math.sqrt(2) if shape == "cube" else radius))
        coords = (x, y, radius)
        objects.append(
            {
                "shape": shape,
                "size": size,
                "material": material,
                "3d_coords": list(coords),
                "rotation": rotation,
                "pixel_coords": list(project(coords)),
                "color": color,
            }
        )
    return objects


def _fits(x: float, y: float, radius: float, placed: list[tuple[float, float, float]]) -> bool:
    (lx, ly, _), (bx, by, _) = DIRECTIONS["left"], DIRECTIONS["behind"]
    for other_x, other_y, other_radius in placed:
        dx, dy = x - other_x, y - other_y
        if math.hypot(dx, dy) - radius - other_radius < MIN_DIST:
            return False
        # CLEVR checks 0 < margin < MARGIN along left, right, front and behind; right and front are
        # the opposites of left and behind, so two absolute values cover all four.
        if 0 < abs(dx * lx + dy * ly) < MARGIN or 0 < abs(dx * bx + dy * by) < MARGIN:
            return False
    return True


def relationships(objects: list[dict[str, Any]]) -> dict[str, list[list[int]]]:
    """``result[name][i]``: the objects that are ``name`` of object i, as in CLEVR's render_images.py."""
    result: dict[str, list[list[int]]] = {}
    for name in RELATIONS:
        dx, dy, dz = DIRECTIONS[name]
        result[name] = []
        for i, obj in enumerate(objects):
            xi, yi, zi = obj["3d_coords"]
            result[name].append(
                [
                    j
                    for j, other in enumerate(objects)
                    if j != i
                    and (other["3d_coords"][0] - xi) * dx
                    + (other["3d_coords"][1] - yi) * dy
                    + (other["3d_coords"][2] - zi) * dz
                    > RELATION_EPS
                ]
            )
    return result
