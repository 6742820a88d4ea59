"""An AVI file of MJPEG frames, built in memory: the JPEGs are copied as they are, not re-encoded.

The layout is the classic AVI 1.0 (RIFF) one that every player and OpenCV read::

    RIFF 'AVI '
      LIST 'hdrl'  avih (main header) · LIST 'strl' (strh: one video stream 'MJPG', strf)
      LIST 'movi'  '00dc' chunk per frame (padded to an even size)
      idx1         one entry per frame (keyframe, offset from 'movi', size)

AVI has one frame rate, so a clip's original timing becomes its average rate
(frames - 1 over first-to-last capture time). The headers have a fixed size, so
they are reserved first and filled in at :meth:`AviBuilder.finish`: the frames
are copied once into one buffer, and the file is at most ``max_bytes`` (JPEGs,
8 bytes of chunk header and 16 of index each, the headers). Finishing copies it
once more into the ``bytes`` a WSGI server sends, so a download peaks at twice
its size in memory; :meth:`~AviBuilder.finish` may be called once.
"""

from __future__ import annotations

import struct

#: Bytes before the first frame chunk: RIFF + hdrl (avih, strl: strh, strf) + LIST movi header.
_AVIH_SIZE = 56
_STRH_SIZE = 56
_STRF_SIZE = 40
_STRL_SIZE = 4 + (8 + _STRH_SIZE) + (8 + _STRF_SIZE)
_HDRL_SIZE = 4 + (8 + _AVIH_SIZE) + (8 + _STRL_SIZE)
HEADER_BYTES = 12 + (8 + _HDRL_SIZE) + 12
#: Where 'movi' (the fourcc the index offsets count from) is in the file.
_MOVI_FOURCC_AT = HEADER_BYTES - 4
_AVIF_HASINDEX = 0x10
_AVIIF_KEYFRAME = 0x10
#: Index entry plus chunk header: what each frame costs beyond its JPEG (and padding).
FRAME_OVERHEAD = 16 + 8 + 1
DEFAULT_FPS = 10.0


class ClipTooLarge(ValueError):
    """The frames would make the file larger than its limit."""


class AviBuilder:
    """Collects JPEG frames, then :meth:`finish` returns the AVI file (see the module docstring).

    Args:
        width, height: the frame size written in the headers (a clip's first frame's).
        max_bytes: the largest file built; :meth:`add` raises :class:`ClipTooLarge` beyond it.
    """

    def __init__(self, width: int, height: int, max_bytes: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size {width}x{height} is not positive")
        self.width = width
        self.height = height
        self.max_bytes = max_bytes
        self._buffer = bytearray(HEADER_BYTES)
        self._index: list[tuple[int, int]] = []  # (offset from 'movi', size) of each chunk
        self._largest = 0
        self._finished = False

    @property
    def frames(self) -> int:
        """Frames added so far."""
        return len(self._index)

    @property
    def size(self) -> int:
        """Bytes of the file if it were finished now."""
        if self._finished:
            return len(self._buffer)
        return len(self._buffer) + 8 + 16 * len(self._index)

    def add(self, jpeg: bytes) -> None:
        """Append one JPEG frame as it is.

        Raises:
            ClipTooLarge: the file would grow beyond ``max_bytes`` (nothing is added).
        """
        if self._finished:
            raise RuntimeError("the AVI is finished: no frame can be added")
        padded = len(jpeg) + (len(jpeg) & 1)
        if self.size + 8 + padded + 16 > self.max_bytes:
            raise ClipTooLarge(
                f"the clip is larger than {self.max_bytes} bytes after {self.frames} frames: "
                "choose a shorter range"
            )
        self._index.append((len(self._buffer) - _MOVI_FOURCC_AT, len(jpeg)))
        self._buffer += b"00dc" + struct.pack("<I", len(jpeg)) + jpeg
        if len(jpeg) & 1:
            self._buffer += b"\0"
        self._largest = max(self._largest, len(jpeg))

    def finish(self, duration_s: float) -> bytes:
        """The whole file; ``duration_s`` is first-to-last capture time (sets the frame rate)."""
        if self._finished:
            raise RuntimeError("the AVI is finished already")
        frames = len(self._index)
        fps = (frames - 1) / duration_s if frames > 1 and duration_s > 0 else DEFAULT_FPS
        movi_size = len(self._buffer) - _MOVI_FOURCC_AT
        index = bytearray(b"idx1" + struct.pack("<I", 16 * frames))
        for offset, size in self._index:
            index += struct.pack("<4sIII", b"00dc", _AVIIF_KEYFRAME, offset, size)
        struct.pack_into("<4sI4s", self._buffer, 0, b"RIFF", self.size - 8, b"AVI ")
        struct.pack_into("<4sI4s", self._buffer, 12, b"LIST", _HDRL_SIZE, b"hdrl")
        struct.pack_into("<4sI", self._buffer, 24, b"avih", _AVIH_SIZE)
        struct.pack_into("<14I", self._buffer, 32, *self._main_header(fps, frames))
        at = 32 + _AVIH_SIZE
        struct.pack_into("<4sI4s", self._buffer, at, b"LIST", _STRL_SIZE, b"strl")
        struct.pack_into("<4sI", self._buffer, at + 12, b"strh", _STRH_SIZE)
        struct.pack_into(
            "<4s4sIHHIIIIIIIIhhhh",
            self._buffer,
            at + 20,
            b"vids",
            b"MJPG",
            0,  # flags
            0,  # priority
            0,  # language
            0,  # initial frames
            1000,  # scale: rate / scale = frames per second
            _dword(fps * 1000),
            0,  # start
            frames,
            self._largest,
            0xFFFFFFFF,  # quality: the default
            0,  # sample size: varies
            0,
            0,
            min(self.width, 0x7FFF),
            min(self.height, 0x7FFF),
        )
        at += 20 + _STRH_SIZE
        struct.pack_into("<4sI", self._buffer, at, b"strf", _STRF_SIZE)
        struct.pack_into(
            "<IiiHH4sIiiII",
            self._buffer,
            at + 8,
            _STRF_SIZE,
            self.width,
            self.height,
            1,  # planes
            24,  # bits per pixel once decoded
            b"MJPG",
            self.width * self.height * 3,
            0,
            0,
            0,
            0,
        )
        struct.pack_into("<4sI4s", self._buffer, _MOVI_FOURCC_AT - 8, b"LIST", movi_size, b"movi")
        self._buffer += index
        self._finished = True
        return bytes(self._buffer)  # one copy: the file is at most twice in memory, briefly

    def _main_header(self, fps: float, frames: int) -> tuple[int, ...]:
        return (
            _dword(1_000_000 / fps),  # microseconds per frame
            _dword(self._largest * fps),  # max bytes per second
            0,  # padding granularity
            _AVIF_HASINDEX,
            frames,
            0,  # initial frames
            1,  # streams
            self._largest,  # suggested buffer size
            self.width,
            self.height,
            0,
            0,
            0,
            0,
        )


def _dword(value: float) -> int:
    """``value`` rounded into 1..2^32-1 (a header field; extreme rates are clamped)."""
    return min(max(1, round(value)), 0xFFFFFFFF)
