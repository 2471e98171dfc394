"""Earning rules: the page's views (its blueprint is registered in console.pages)."""

from flask import Blueprint, render_template

from console.auth import requires

bp = Blueprint("rules", __name__, url_prefix="/rules")


@bp.get("")
@requires("program.view")
def index():
    return render_template("console/rules/index.html")
