"""Annotators: small classes that draw predictions on a frame, readable from 360p to 4K.

Each has one method, ``annotate(image, ...) -> image``, drawing in place on a
BGR ``numpy`` image. Line widths and fonts scale with the frame height.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kva.predictions import NO_TRACK, Classification, Detections, ModelResult
from kva.scene import Scene

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)
_RED = (40, 40, 230)
#: Box colours (BGR), one per model in order.
PALETTE = ((0, 220, 0), (255, 160, 0), (0, 200, 255), (220, 0, 220), (255, 255, 0))


@dataclass(frozen=True, slots=True)
class Style:
    """Sizes for one frame height: text scale, thickness, line height, margin."""

    scale: float
    thickness: int
    line: int
    margin: int

    @classmethod
    def for_height(cls, height: int) -> Style:
        unit = max(height, 480) / 720.0
        scale = 0.7 * unit
        thickness = max(1, round(2 * unit))
        return cls(scale, thickness, max(12, round(30 * unit)), max(4, round(10 * unit)))


def label_height(style: Style) -> int:
    """Height of one :func:`put_label` box for ``style``."""
    (_w, height), baseline = cv2.getTextSize("Ag", _FONT, style.scale, style.thickness)
    return height + baseline + 2 * max(2, style.thickness * 2)


def put_label(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int],
    style: Style,
    color: tuple[int, int, int] = _WHITE,
    background: tuple[int, int, int] = _BLACK,
) -> None:
    """Text on a filled box whose top-left corner is ``origin`` (kept inside the image)."""
    (width, height), baseline = cv2.getTextSize(text, _FONT, style.scale, style.thickness)
    x, y = origin
    pad = max(2, style.thickness * 2)
    box_h = height + baseline + 2 * pad
    h, w = image.shape[:2]
    x = max(0, min(x, w - width - 2 * pad))
    y = max(0, min(y, h - box_h))
    cv2.rectangle(image, (x, y), (x + width + 2 * pad, y + box_h), background, cv2.FILLED)
    cv2.putText(
        image,
        text,
        (x + pad, y + pad + height),
        _FONT,
        style.scale,
        color,
        style.thickness,
        cv2.LINE_AA,
    )


class ClassificationAnnotator:
    """Model name and top-k ``label score`` lines in a panel."""

    def __init__(self, color: tuple[int, int, int] = PALETTE[0]) -> None:
        self.color = color

    def lines(self, result: ModelResult) -> int:
        """Text lines this annotator's panel takes."""
        prediction = result.prediction
        return 1 + (len(prediction.labels) if isinstance(prediction, Classification) else 0)

    def annotate(self, image: np.ndarray, result: ModelResult, top: int = 0) -> np.ndarray:
        """Draw the panel with its top edge at ``top`` pixels."""
        style = Style.for_height(image.shape[0])
        step = label_height(style)
        put_label(image, result.model, (style.margin, top), style, _BLACK, self.color)
        if isinstance(result.prediction, Classification):
            pairs = zip(result.prediction.labels, result.prediction.scores, strict=True)
            for row, (label, score) in enumerate(pairs, start=1):
                name = label.split(",")[0][:40]
                put_label(image, f"{name} {score:.2f}", (style.margin, top + row * step), style)
        return image


class DetectionAnnotator:
    """A box and score per detection, and the model name with the count in the panel."""

    def __init__(self, color: tuple[int, int, int] = PALETTE[0]) -> None:
        self.color = color

    def lines(self, result: ModelResult) -> int:
        return 1

    def annotate(self, image: np.ndarray, result: ModelResult, top: int = 0) -> np.ndarray:
        style = Style.for_height(image.shape[0])
        step = label_height(style)
        detections = result.prediction
        if not isinstance(detections, Detections):
            detections = Detections((), ())
        boxes, scores = detections.boxes, detections.scores
        name = f"{detections.label} " if detections.label else ""
        h, w = image.shape[:2]
        for index, (box, score) in enumerate(zip(boxes, scores, strict=True)):
            p1 = (round(box[0] * (w - 1)), round(box[1] * (h - 1)))
            p2 = (round(box[2] * (w - 1)), round(box[3] * (h - 1)))
            cv2.rectangle(image, p1, p2, self.color, style.thickness + 1)
            label_y = p1[1] - step if p1[1] >= step else p1[1]
            track = detections.track_of(index)
            tag = f"#{track} " if track != NO_TRACK else ""
            put_label(image, f"{tag}{name}{score:.2f}", (p1[0], label_y), style, _BLACK, self.color)
        text = f"{result.model}: {len(boxes)} {detections.label or ''} found".replace("  ", " ")
        put_label(image, text, (style.margin, top), style, _BLACK, self.color)
        return image


class StatusAnnotator:
    """A red mark for a model that gave nothing: ``model unavailable`` or ``model error``."""

    def lines(self, result: ModelResult) -> int:
        return 1

    def annotate(self, image: np.ndarray, result: ModelResult, top: int = 0) -> np.ndarray:
        style = Style.for_height(image.shape[0])
        text = "model unavailable" if result.status == "unavailable" else "model error"
        put_label(image, f"{result.model}: {text}", (style.margin, top), style, _WHITE, _RED)
        return image


class FooterAnnotator:
    """Bottom line: stream, sequence, frame age and output fps."""

    def annotate(self, image: np.ndarray, text: str) -> np.ndarray:
        style = Style.for_height(image.shape[0])
        top = image.shape[0] - label_height(style) - style.margin
        put_label(image, text, (style.margin, top), style)
        return image


#: Zone outlines and counting lines (BGR).
_ZONE = (0, 215, 255)
_LINE = (255, 0, 255)


@dataclass(frozen=True, slots=True)
class SceneCounts:
    """What the scene annotator writes: line name -> {in, out}; zone name -> (inside,
    entered)."""

    lines: dict[str, dict[str, int]]
    zones: dict[str, tuple[int, int]]


class SceneAnnotator:
    """The camera's zones (outlines) and counting lines (with an arrow towards the ``in``
    side), each with its running counts."""

    def annotate(self, image: np.ndarray, scene: Scene, counts: SceneCounts) -> np.ndarray:
        style = Style.for_height(image.shape[0])
        h, w = image.shape[:2]

        def px(point: tuple[float, float]) -> tuple[int, int]:
            return round(point[0] * (w - 1)), round(point[1] * (h - 1))

        for zone in scene.zones:
            polygon = np.array([px(p) for p in zone.points], dtype=np.int32)
            cv2.polylines(image, [polygon], True, _ZONE, style.thickness + 1, cv2.LINE_AA)
            inside, entered = counts.zones.get(zone.name, (0, 0))
            top_left = (int(polygon[:, 0].min()), int(polygon[:, 1].min()))
            put_label(image, f"{zone.name}: {inside} in, {entered} entered", top_left, style,
                      _BLACK, _ZONE)  # fmt: skip
        for line in scene.lines:
            a, b = px(line.a), px(line.b)
            cv2.line(image, a, b, _LINE, style.thickness + 2, cv2.LINE_AA)
            # the "in" side is the right of A->B as the image shows it: normal (-dy, dx)
            mid = ((a[0] + b[0]) // 2, (a[1] + b[1]) // 2)
            dx, dy = b[0] - a[0], b[1] - a[1]
            norm = max(1.0, float(np.hypot(dx, dy)))
            reach = 2 * style.line
            tip = (round(mid[0] - dy / norm * reach), round(mid[1] + dx / norm * reach))
            cv2.arrowedLine(image, mid, tip, _LINE, style.thickness + 1, cv2.LINE_AA)
            c = counts.lines.get(line.name, {"in": 0, "out": 0})
            put_label(image, f"{line.name}: in {c['in']} out {c['out']}", a, style, _BLACK, _LINE)
        return image


class FrameAnnotator:
    """Draws every model's result, stacked top-left, and the footer on one frame."""

    def __init__(self) -> None:
        self._status = StatusAnnotator()
        self._footer = FooterAnnotator()
        self._scene = SceneAnnotator()

    def annotate(
        self,
        image: np.ndarray,
        results: list[ModelResult],
        footer: str,
        scene: Scene | None = None,
        counts: SceneCounts | None = None,
    ) -> np.ndarray:
        """Zones and lines (under the boxes), the models' results, the footer."""
        if scene:
            self._scene.annotate(image, scene, counts or SceneCounts({}, {}))
        style = Style.for_height(image.shape[0])
        step = label_height(style)
        top = style.margin
        for index, result in enumerate(results):
            color = PALETTE[index % len(PALETTE)]
            annotator: ClassificationAnnotator | DetectionAnnotator | StatusAnnotator
            if isinstance(result.prediction, Classification):
                annotator = ClassificationAnnotator(color)
            elif isinstance(result.prediction, Detections):
                annotator = DetectionAnnotator(color)
            else:
                annotator = self._status
            annotator.annotate(image, result, top)
            top += annotator.lines(result) * step + style.margin // 2
        return self._footer.annotate(image, footer)
