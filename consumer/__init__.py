"""kva consumer service."""
