"""What the tests share, one home each (the stand-ins benchmarks use too are in ``testbed``).

- :mod:`tests.support.wait`: ``wait_for`` (poll until true, or fail with a message)
  and ``eventually`` (the same, without failing).
- :mod:`tests.support.process`: ``kva`` commands as child processes (``KvaProcess``,
  ``run_kva``), output kept, always stopped.
- :mod:`tests.support.serve`: ``kva serve`` started on free ports and ready (``ServeProcess``).
- :mod:`tests.support.kafka`: topics, background readers, feeders and one-shot producers.
- :mod:`tests.support.net`: which TCP sockets a process listens on (from ``/proc``).
"""
