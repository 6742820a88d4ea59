"""``/``: the grid of live streams (static HTML/CSS/JS, no build step)."""

from __future__ import annotations

from flask import Blueprint, render_template

from video.app import viewer_state
from video.routes.api import streams_payload

bp = Blueprint(
    "pages",
    __name__,
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/static",
)


@bp.get("/")
def index() -> str:
    state = viewer_state()
    settings = state.settings
    return render_template(
        "index.html",
        initial=streams_payload(state),
        stale_after=settings.video_stale_after,
        max_fps=settings.video_max_fps,
        topic=settings.video_topic,
    )
