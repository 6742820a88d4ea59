"""``kva consume``: the newest frame of each stream, fanned out to model-server replicas,
annotated and published."""
