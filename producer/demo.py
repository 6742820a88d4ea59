"""The demo cameras: what is shown when nobody names a camera. The one home of that choice.

=========  =====================================================================================
``video``  ``vtest.avi``: 768×576, 10 fps, 795 frames (80 s) of people walking in a square,
           OpenCV's sample video from Debian's ``opencv-doc`` package, looped at its own rate.
           ``scripts/fetch-demo-video.sh`` (run by ``scripts/setup.sh``) puts it at
           :func:`kva.paths.demo_video`. ``kva up``'s default, for the ``person`` model.
``photos`` the ``demo`` source: pan and zoom over scikit-image's photos (a cat, a coffee, an
           astronaut, a rocket), generated, nothing to fetch. ``kva produce``'s default, and
           ``kva up``'s when the video is missing.
=========  =====================================================================================
"""

from __future__ import annotations

from typing import Literal

from kva import paths

DemoKind = Literal["video", "photos"]
#: The ``--source`` of the photo demo (see :mod:`kva.producer.sources`).
PHOTOS_SOURCE = "demo"
#: The demo video's own frame rate and size (its file says so; a test checks).
VIDEO_FPS = 10.0
VIDEO_SIZE = (768, 576)
#: The command that fetches the video, relative to the repository (``make run`` runs it too).
FETCH_COMMAND = "scripts/fetch-demo-video.sh"


class DemoVideoMissing(FileNotFoundError):
    """The demo video has not been fetched; the message says how to get it."""


def demo_source(kind: DemoKind) -> str:
    """The ``--source`` SRC of the ``kind`` demo.

    Raises:
        DemoVideoMissing: ``kind`` is ``video`` and the file is not there.
    """
    if kind == "photos":
        return PHOTOS_SOURCE
    video = paths.demo_video()
    if not video.is_file():
        raise DemoVideoMissing(
            f"the demo video {video} is missing; get it with {FETCH_COMMAND} "
            "(about 95 MB from Debian's opencv-doc package; `make run` does it too)"
        )
    return str(video)
