"""kva producer service."""
