"""Zones and counting lines: validation (each bad case with its message) and geometry."""

from __future__ import annotations

import pytest

from kva.scene import Line, Scene, SceneError, Zone, parse_scene, reference_point

SQUARE = [[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6]]


def test_a_camera_with_zones_and_lines_parses() -> None:
    scene = parse_scene(
        {
            "id": "door",
            "source": "demo",
            "zones": [{"name": "hall", "points": SQUARE, "loiter_s": 5}],
            "lines": [{"name": "walkway", "points": [[0.0, 0.5], [1.0, 0.5]]}],
        },
        "door",
    )
    assert scene == Scene(
        zones=(Zone("hall", ((0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)), 5.0),),
        lines=(Line("walkway", (0.0, 0.5), (1.0, 0.5)),),
    )
    assert parse_scene({"id": "x", "source": "demo"}, "x") == Scene()
    assert not Scene()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"zones": [{"name": "z", "points": [[0.1, 0.1], [1.2, 0.1], [0.5, 0.5]]}]},
            "camera 'door', zone 0 'z': point 1 [1.2, 0.1] is outside 0..1",
        ),
        (
            {"zones": [{"name": "z", "points": [[0.1, 0.1], [0.5, -0.01], [0.5, 0.5]]}]},
            "point 1 [0.5, -0.01] is outside 0..1",
        ),
        (
            {"lines": [{"name": "l", "points": [[0.1, 0.1], [0.5, 1.5]]}]},
            "camera 'door', line 0 'l': point 1 [0.5, 1.5] is outside 0..1",
        ),
        (
            {"zones": [{"name": "z", "points": [[0.1, 0.1], [0.5, 0.5]]}]},
            "camera 'door', zone 0 'z': a zone needs at least 3 points, got 2",
        ),
        (
            # a bow tie: edges 0 and 2 cross
            {"zones": [{"name": "z", "points": [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]}]},
            "camera 'door', zone 0 'z': the polygon is self-intersecting (edges 0 and 2 cross)",
        ),
        (
            # a spike folding back along itself
            {"zones": [{"name": "z", "points": [[0.1, 0.1], [0.5, 0.1], [0.3, 0.1], [0.3, 0.4]]}]},
            "the polygon is self-intersecting",
        ),
        (
            {"zones": [{"name": "z", "points": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]}]},
            "the polygon has no area",
        ),
        (
            {"lines": [{"name": "l", "points": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]}]},
            "camera 'door', line 0 'l': a line is exactly 2 points [A, B], got 3",
        ),
        (
            {"lines": [{"name": "l", "points": [[0.1, 0.1], [0.1, 0.1]]}]},
            "its two points are the same",
        ),
        ({"lines": [{"points": [[0.1, 0.1], [0.2, 0.2]]}]}, "camera 'door', line 0: name must"),
        ({"lines": [{"name": "l", "points": [[0.1, "x"], [0.2, 0.2]]}]}, "not two numbers"),
        ({"lines": [{"name": "l", "points": [[0.1], [0.2, 0.2]]}]}, "point 0 is not [x, y]"),
        ({"lines": [{"name": "l", "points": "0.1 0.1"}]}, "points must be a list"),
        ({"lines": [{"name": "l", "points": [[0, 0], [1, 1]], "dir": "in"}]}, "unknown key"),
        ({"zones": {"name": "z"}}, "camera 'door': zones must be a list"),
        ({"lines": ["l"]}, "camera 'door', line 0: expected a mapping"),
        (
            {"zones": [{"name": "z", "points": SQUARE, "loiter_s": -1}]},
            "loiter_s must be a number of seconds",
        ),
        (
            {
                "zones": [{"name": "a", "points": SQUARE}],
                "lines": [{"name": "a", "points": [[0, 0], [1, 1]]}],
            },
            "camera 'door': zone/line name(s) ['a'] used twice",
        ),
    ],
)
def test_a_malformed_zone_or_line_is_refused_naming_the_camera(entry, message) -> None:
    with pytest.raises(SceneError) as error:
        parse_scene({"id": "door", **entry}, "door")
    assert message in str(error.value)
    assert "camera 'door'" in str(error.value)


# A line drawn left to right across the middle: "in" is downwards (left of A->B is above).
ACROSS = Line("walkway", (0.1, 0.5), (0.9, 0.5))


def test_sides_of_a_line_follow_the_documented_direction() -> None:
    assert ACROSS.side((0.5, 0.3)) == -1  # above: the left of A->B as the image shows it
    assert ACROSS.side((0.5, 0.7)) == 1
    assert ACROSS.side((0.5, 0.5)) == 0
    down = Line("down", (0.5, 0.0), (0.5, 1.0))  # drawn top to bottom: left is the right half
    assert down.side((0.8, 0.5)) == -1
    assert down.side((0.2, 0.5)) == 1


@pytest.mark.parametrize(
    ("start", "end", "crossed"),
    [
        ((0.5, 0.3), (0.5, 0.7), True),  # down through the middle
        ((0.5, 0.7), (0.5, 0.3), True),  # up
        ((0.05, 0.3), (0.05, 0.7), False),  # beside the segment (left of A)
        ((0.95, 0.3), (0.95, 0.7), False),  # beside the segment (right of B)
        ((0.5, 0.3), (0.5, 0.5), False),  # onto the line: touching is not crossing
        ((0.5, 0.5), (0.5, 0.7), False),  # from the line
        ((0.2, 0.3), (0.8, 0.4), False),  # along one side
        ((0.0, 0.3), (1.0, 0.7), True),  # diagonally through it
    ],
)
def test_crossing(start, end, crossed) -> None:
    assert ACROSS.crossed(start, end) is crossed


def test_point_in_zone() -> None:
    zone = Zone("z", ((0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)))
    assert zone.contains((0.4, 0.4))
    assert not zone.contains((0.1, 0.4))
    assert not zone.contains((0.4, 0.7))
    concave = Zone("c", ((0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.5, 0.3), (0.1, 0.9)))
    assert concave.contains((0.2, 0.3))
    assert not concave.contains((0.5, 0.8))  # in the notch


def test_reference_point_is_the_bottom_centre() -> None:
    assert reference_point((0.2, 0.1, 0.4, 0.9)) == pytest.approx((0.3, 0.9))


def test_jitter_about_a_line_is_no_crossing() -> None:
    # a box's bottom edge wobbling by half a percent of the frame about the line
    points = [(0.1 + 0.05 * i, 0.5 + (0.004 if i % 2 else -0.004)) for i in range(10)]
    assert {ACROSS.side(p) for p in points} == {0}
    assert ACROSS.side((0.5, 0.52)) == 1 and ACROSS.side((0.5, 0.48)) == -1
