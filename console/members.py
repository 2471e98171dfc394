"""Members: the page's views (its blueprint is registered in console.pages)."""

from flask import Blueprint, render_template

from console.auth import requires

bp = Blueprint("members", __name__, url_prefix="/members")


@bp.get("")
@requires("members.view")
def index():
    return render_template("console/members/index.html")
