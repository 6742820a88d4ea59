"""``kva produce``: cameras (webcam, RTSP, HTTP, files, test pattern, demo scene) into Kafka."""
