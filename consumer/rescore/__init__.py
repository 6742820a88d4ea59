"""The re-score mode of ``kva consume`` (``--from``): every frame of a time range, exactly once.

Terms:

- **range**: the records of the input topic whose capture time lies in ``--from`` ..
  ``--to``, as offsets per partition (:mod:`~kva.consumer.rescore.plan`); fixed when the
  re-score first starts and stored with its committed offsets, so a restart re-scores
  the very same records.
- **done**: a partition's committed offset: every record before it has its outputs in
  the output topics, committed in the same Kafka transaction as the offset.
- **replay**: a resumed re-score whose detectors are tracked reads its partitions from
  the range's start again, through the models and trackers but publishing nothing
  before *done*, so the trackers (and the zone/line state) are what an uninterrupted
  run had there: the same track ids, the same events.

Modules: :mod:`~kva.consumer.rescore.plan` (which offsets), :mod:`~kva.consumer.rescore.window`
(frames in work, handed back in offset order), :mod:`~kva.consumer.rescore.scoring` (one
frame through every model, waiting instead of dropping), :mod:`~kva.consumer.rescore.summary`
and :mod:`~kva.consumer.rescore.service` (the loop and its transactions).
"""
