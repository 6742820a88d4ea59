"""``kva compare``: how far two runs agree on the same frames, model by model.

Two predictions topics (say the live run's ``predictions`` and a re-score's) are read
``read_committed`` (:mod:`~kva.compare.reader`), their documents joined on the frame
they are about (stream, sequence number and capture time, :mod:`~kva.compare.join`),
and each model of run A compared with its counterpart in run B
(:mod:`~kva.compare.agreement`): top-1 agreement for classifiers; for detectors, boxes
matched one to one at IoU >= 0.5 as a share of A's boxes (recall, A being the
reference) and of B's (precision), and the difference in box counts; and each run's
latency. :mod:`~kva.compare.table` prints it.

A service living inside ``kva/`` (as ``kva.sink`` does): it imports no other service.
"""
