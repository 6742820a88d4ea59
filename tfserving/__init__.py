"""kva tfserving service."""
