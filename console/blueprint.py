"""The console's blueprint, under which every page's blueprint is nested (`console.pages`)."""

from pathlib import Path

from flask import Blueprint

HERE = Path(__file__).parent

bp = Blueprint(
    "console",
    "console",
    url_prefix="/console",
    root_path=str(HERE),
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
