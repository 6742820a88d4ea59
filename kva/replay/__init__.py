"""``kva replay``: a stream's recorded past, from Kafka, to a video file, a topic or the viewer.

Frames already sit in Kafka, each record stamped with its capture time, so a time
range of one stream is a range of offsets (:mod:`kva.kafka.history`). The replay
reads it with no consumer group (the live consumers are never disturbed), one
record at a time (memory stays bounded whatever the range), skips and counts corrupt
records, and writes every frame to one output:

- :mod:`~kva.replay.tofile`: an MP4/AVI file with the original timing;
- :mod:`~kva.replay.totopic`: another topic, headers kept (for re-processing);
- :mod:`~kva.replay.toviewer`: the ``annotated`` topic under a new stream id, so a
  running viewer shows the replay as a stream of its own.

``cli`` → ``service`` (start/run/close) → ``pacing``, ``timeline``, the outputs.
"""
