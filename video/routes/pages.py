"""``/``: the grid of live streams (static HTML/CSS/JS, no build step)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from kva.video.auth import TOKEN_QUERY
from kva.video.routes.api import streams_payload
from kva.video.state import viewer_state

bp = Blueprint(
    "pages",
    __name__,
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/static",
)


@bp.get("/")
def index() -> str:
    """The grid page, starting with the current streams."""
    state = viewer_state()
    settings = state.settings
    return render_template(
        "index.html",
        initial=streams_payload(state),
        # the page was opened with ?token=T: its own CSS/JS requests need it too
        auth={TOKEN_QUERY: request.args[TOKEN_QUERY]} if TOKEN_QUERY in request.args else {},
        stale_after=settings.video_stale_after,
        max_fps=settings.video_max_fps,
        topic=settings.video_topic,
    )
