"""Zones and counting lines of a camera: their definition, validation and geometry.

A camera file entry may carry them next to its source settings (coordinates are
normalised: ``x`` from the left edge, ``y`` from the top edge, both 0..1)::

    cameras:
      - id: square
        source: vtest.avi
        zones:
          - name: fountain                # 1..64 characters, unique per camera
            points: [[0.1, 0.5], [0.4, 0.5], [0.4, 0.9], [0.1, 0.9]]
            loiter_s: 20                  # a track inside longer than this: one ``loiter``
        lines:
          - name: walkway
            points: [[0.0, 0.6], [1.0, 0.6]]   # drawn from A to B

- A **zone** is a simple polygon: at least 3 points (at most :data:`MAX_POINTS`), every
  point inside 0..1, no two edges crossing (not self-intersecting), a non-zero area.
- A **line** is 2 distinct points A and B. A crossing is ``in`` when a track goes from
  the *left* side of the line to its *right* side, looking from A towards B on the
  image; ``out`` the other way. For a line drawn left to right (as above), ``in`` is
  a crossing downwards, from above the line to below it; for a line drawn top to
  bottom, ``in`` is a crossing from the right half to the left half. A point on the
  line, or nearer to it than :data:`LINE_MARGIN`, is on neither side: touching the
  line and going back is no crossing, nor is a box's bottom edge jittering about the
  line of someone walking along it.

Where a track is, is its *reference point*: the bottom-centre of its box (the feet
of a person). :func:`parse_scene` validates one camera's entry;
:class:`SceneError` names the camera and what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Keys of a camera file entry that belong to the scene (the rest are the source's).
SCENE_KEYS = frozenset({"zones", "lines"})
MAX_ZONES = 32
MAX_LINES = 32
MAX_POINTS = 64
MAX_NAME = 64
#: Points nearer to a line than this (a fraction of the frame) are on neither side of it.
#: The detector's boxes jitter by a few pixels: on vtest.avi, a line along the way people
#: walk counted 60 "crossings" with no margin, 39 with 0.005, 31 with 0.01, 29 with 0.02.
LINE_MARGIN = 0.01
#: Dwell after which a track in a zone raises ``loiter`` (seconds), unless the zone says.
DEFAULT_LOITER_S = 30.0

Point = tuple[float, float]


class SceneError(ValueError):
    """A zone or line that cannot be used; the message names the camera and the problem."""


@dataclass(frozen=True, slots=True)
class Zone:
    """A named polygon; ``loiter_s`` is the dwell that counts as loitering."""

    name: str
    points: tuple[Point, ...]
    loiter_s: float = DEFAULT_LOITER_S

    def contains(self, point: Point) -> bool:
        """True when ``point`` is inside the polygon (even-odd rule; edges count as inside
        on two of four sides, consistently, so neighbouring zones never share a point)."""
        x, y = point
        inside = False
        pts = self.points
        for i in range(len(pts)):
            (x1, y1), (x2, y2) = pts[i - 1], pts[i]
            if (y1 > y) != (y2 > y):
                cross_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
                if x < cross_x:
                    inside = not inside
        return inside


@dataclass(frozen=True, slots=True)
class Line:
    """A named counting line from ``a`` to ``b`` (see the module docstring for direction)."""

    name: str
    a: Point
    b: Point

    def side(self, point: Point) -> int:
        """-1 on the left of A→B (as the image shows it), +1 on the right, 0 on the line
        (nearer to it than :data:`LINE_MARGIN`)."""
        value = _cross(self.a, self.b, point)
        if abs(value) <= LINE_MARGIN * math.dist(self.a, self.b):
            return 0
        # image y grows downwards: a negative cross product is on the viewer's left
        return -1 if value < 0 else 1

    def crossed(self, start: Point, end: Point) -> bool:
        """True when the step ``start`` → ``end`` passes through the segment A–B, with
        ``start`` and ``end`` strictly on opposite sides."""
        side_start, side_end = self.side(start), self.side(end)
        if side_start == 0 or side_end == 0 or side_start == side_end:
            return False
        # the step's end points straddle the line; does the line's segment straddle the step?
        return _cross(start, end, self.a) * _cross(start, end, self.b) <= 0


@dataclass(frozen=True, slots=True)
class Scene:
    """The zones and lines of one camera."""

    zones: tuple[Zone, ...] = ()
    lines: tuple[Line, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.zones or self.lines)


def reference_point(box: Sequence[float]) -> Point:
    """Where a box's object is: the bottom-centre of ``[x_min, y_min, x_max, y_max]``."""
    return ((box[0] + box[2]) / 2.0, box[3])


def parse_scene(entry: Mapping[str, Any], camera: str) -> Scene:
    """The zones and lines of one camera file entry (``zones`` and ``lines``, both optional).

    Raises:
        SceneError: a malformed zone or line; the message names ``camera``.
    """
    zones_raw = entry.get("zones") or []
    lines_raw = entry.get("lines") or []
    where = f"camera {camera!r}"
    if not isinstance(zones_raw, list) or len(zones_raw) > MAX_ZONES:
        raise SceneError(f"{where}: zones must be a list of at most {MAX_ZONES} zones")
    if not isinstance(lines_raw, list) or len(lines_raw) > MAX_LINES:
        raise SceneError(f"{where}: lines must be a list of at most {MAX_LINES} lines")
    zones = tuple(_zone(item, f"{where}, zone {i}") for i, item in enumerate(zones_raw))
    lines = tuple(_line(item, f"{where}, line {i}") for i, item in enumerate(lines_raw))
    names = [z.name for z in zones] + [ln.name for ln in lines]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SceneError(f"{where}: zone/line name(s) {twice} used twice")
    return Scene(zones, lines)


def _zone(item: Any, where: str) -> Zone:
    fields = _fields(item, where, {"name", "points", "loiter_s"})
    name = _name(fields.get("name"), where)
    where = f"{where} {name!r}"
    points = _points(fields.get("points"), where)
    if len(points) < 3:
        raise SceneError(f"{where}: a zone needs at least 3 points, got {len(points)}")
    far = max(points, key=lambda p: math.dist(p, points[0]))
    if max(abs(_cross(points[0], far, p)) for p in points) < 1e-9:
        raise SceneError(f"{where}: the polygon has no area (its points are on one line)")
    crossing = _self_intersection(points)
    if crossing is not None:
        i, j = crossing
        raise SceneError(f"{where}: the polygon is self-intersecting (edges {i} and {j} cross)")
    loiter = fields.get("loiter_s", DEFAULT_LOITER_S)
    if (
        isinstance(loiter, bool)
        or not isinstance(loiter, int | float)
        or not 0 < loiter <= 86400
        or not math.isfinite(loiter)
    ):
        raise SceneError(f"{where}: loiter_s must be a number of seconds in (0, 86400]")
    return Zone(name, points, float(loiter))


def _line(item: Any, where: str) -> Line:
    fields = _fields(item, where, {"name", "points"})
    name = _name(fields.get("name"), where)
    where = f"{where} {name!r}"
    points = _points(fields.get("points"), where)
    if len(points) != 2:
        raise SceneError(f"{where}: a line is exactly 2 points [A, B], got {len(points)}")
    if math.dist(points[0], points[1]) < 1e-6:
        raise SceneError(f"{where}: its two points are the same")
    return Line(name, points[0], points[1])


def _fields(item: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(item, dict):
        raise SceneError(f"{where}: expected a mapping with {sorted(allowed)}")
    unknown = sorted(str(k)[:40] for k in item if k not in allowed)
    if unknown:
        raise SceneError(f"{where}: unknown key(s) {unknown} (allowed: {sorted(allowed)})")
    return item


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME or not value.isprintable():
        raise SceneError(f"{where}: name must be text of 1..{MAX_NAME} printable characters")
    return value


def _points(value: Any, where: str) -> tuple[Point, ...]:
    if not isinstance(value, list) or len(value) > MAX_POINTS:
        raise SceneError(f"{where}: points must be a list of at most {MAX_POINTS} [x, y] pairs")
    points = []
    for index, pair in enumerate(value):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise SceneError(f"{where}: point {index} is not [x, y]")
        for v in pair:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise SceneError(f"{where}: point {index} is not two numbers")
            if not 0.0 <= v <= 1.0:
                raise SceneError(
                    f"{where}: point {index} {list(pair)!r:.60} is outside 0..1 "
                    "(coordinates are fractions of the frame's width and height)"
                )
        points.append((float(pair[0]), float(pair[1])))
    return tuple(points)


def _cross(a: Point, b: Point, p: Point) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def _segments_touch(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True when segments p1–p2 and q1–q2 share any point (crossing, touching, overlapping)."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on_segment(a: Point, b: Point, p: Point, d: float) -> bool:
        return (
            abs(d) < 1e-12
            and min(a[0], b[0]) <= p[0] <= max(a[0], b[0])
            and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])
        )

    return (
        on_segment(q1, q2, p1, d1)
        or on_segment(q1, q2, p2, d2)
        or on_segment(p1, p2, q1, d3)
        or on_segment(p1, p2, q2, d4)
    )


def _self_intersection(points: Sequence[Point]) -> tuple[int, int] | None:
    """Two non-neighbouring edges that touch, as (i, j) edge indices, or None.

    Edge ``i`` runs from point ``i`` to point ``i + 1`` (the last one back to point 0).
    Neighbouring edges share their common point only; anything more (a repeated point,
    a spike folding back) also counts.
    """
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            neighbours = j == i + 1 or (i == 0 and j == n - 1)
            if neighbours:
                if _folds_back(edges[i], edges[j], i == 0 and j == n - 1):
                    return (i, j)
                continue
            if _segments_touch(*edges[i], *edges[j]):
                return (i, j)
    return None


def _folds_back(first: tuple[Point, Point], second: tuple[Point, Point], wrap: bool) -> bool:
    """Neighbouring edges that overlap along a stretch (collinear and pointing back)."""
    if wrap:  # edge n-1 ends where edge 0 starts
        first, second = second, first
    (a, b), (_b, c) = first, second
    if abs(_cross(a, b, c)) > 1e-12:
        return False
    return (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]) < 0
