"""A real RTSP camera for tests: GStreamer's RTSP server (run with Debian's /usr/bin/python3).

Usage: ``/usr/bin/python3 rtsp_server.py PORT [FPS WIDTH HEIGHT]``. Serves a
live test pattern as RTP/JPEG at ``rtsp://127.0.0.1:PORT/cam`` and prints
``READY`` once it listens. SIGTERM stops it.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port = int(sys.argv[1])
    fps, width, height = (int(a) for a in (sys.argv[2:5] or ["15", "640", "360"]))
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    # format=I420: rtpjpegpay rejects the JPEGs of other layouts ("Invalid component").
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width={width},"
        f"height={height},framerate={fps}/1 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {port}", flush=True)
        sys.exit(1)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print("READY", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
