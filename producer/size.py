"""Output frame size from the requested width and/or height."""

from __future__ import annotations


def target_size(
    width: int, height: int, want_width: int | None, want_height: int | None
) -> tuple[int, int]:
    """The output size: as asked, or scaled to keep the aspect when one side is given."""
    if want_width and want_height:
        return want_width, want_height
    if want_width:
        return want_width, max(1, round(height * want_width / width))
    if want_height:
        return max(1, round(width * want_height / height)), want_height
    return width, height
