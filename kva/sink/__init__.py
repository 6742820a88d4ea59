"""``kva events``: the sink that delivers the ``events`` topic to MQTT and webhooks, at
least once (see :mod:`kva.sink.service`)."""
