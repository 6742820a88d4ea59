"""The viewer output: the replay as a stream of its own in a running ``kva video``.

The frames go to the annotated topic (the one the viewer reads) under a new stream
id, ``<stream>.replay-<n>`` with the first ``n`` the topic does not hold yet, and
carry ``kva-replay-of: <stream>``. Their capture times stay the original ones, so the
viewer shows how long ago the replayed moment was.
"""

from __future__ import annotations

import threading

from kva.frame import MAX_STREAM_ID_LENGTH
from kva.kafka.peek import RangeError, recent_streams
from kva.replay.totopic import TopicOutput
from kva.settings import KafkaSettings

#: The header naming the stream a replayed frame came from.
H_REPLAY_OF = "kva-replay-of"


def replay_stream_id(stream: str, taken: set[str]) -> str:
    """``<stream>.replay-<n>``: the first ``n`` (from 1) not in ``taken``."""
    n = 1
    while True:
        suffix = f".replay-{n}"
        candidate = stream[: MAX_STREAM_ID_LENGTH - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


def viewer_output(
    settings: KafkaSettings,
    topic: str,
    stream: str,
    stop: threading.Event,
    viewer_stream: str | None = None,
) -> TopicOutput:
    """A :class:`TopicOutput` to ``topic`` under the replay's own stream id."""
    if viewer_stream is None:
        try:
            taken = set(recent_streams(settings, topic))
        except RangeError:  # no annotated topic yet: every id is free
            taken = set()
        viewer_stream = replay_stream_id(stream, taken)
    output = TopicOutput(
        settings, topic, stop, key=viewer_stream, extra_headers=[(H_REPLAY_OF, stream.encode())]
    )
    output.name = f"the viewer as stream {viewer_stream} (topic {topic})"
    return output
