"""kva video service."""
