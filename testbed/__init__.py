"""What kva runs against in the tests *and* the benchmarks: stand-ins for the world outside.

Fake cameras (:mod:`testbed.cameras`: HTTP MJPEG, GStreamer RTSP), a
fixed-latency model server (:mod:`testbed.model_server`, also runnable:
``python -m testbed.model_server``), headless Chromium (:mod:`testbed.browser`),
a real Kafka for a run and a collector of what reached a topic
(:mod:`testbed.kafka`), and ``kva produce``'s service run in a thread
(:mod:`testbed.producer`).

Why a package of its own: ``tests/`` and ``bench/`` both need these, and a
benchmark must not import the test suite (a test helper changed for a test
would silently change a measurement). ``tests/support/`` holds what only the
tests share. Nothing in ``kva`` imports this package and the wheel does not
ship it.
"""
