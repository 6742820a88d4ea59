"""``kva video``: the Flask MJPEG viewer for the annotated streams."""
