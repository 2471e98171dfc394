"""`/docs`: Swagger UI for the API's OpenAPI document, from vendored files only.

flask-smorest would serve Swagger UI from a CDN with an inline script; here the page loads
swagger-ui-dist's bundle and stylesheet (console/static/vendor/swagger-ui, see VENDOR.md) and
a small initializer of ours from this host, under a Content-Security-Policy that allows no
other host and no inline script. It works offline.
"""

from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, send_from_directory

from loyalty.cache_control import own_cache_control

bp = Blueprint("apidocs", __name__, template_folder="templates")

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "swagger-ui-bundle.js": STATIC / "vendor" / "swagger-ui",
    "swagger-ui.css": STATIC / "vendor" / "swagger-ui",
    "docs.js": STATIC / "apidocs",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.get("/docs")
def docs():
    config = current_app.config
    spec_url = config["OPENAPI_URL_PREFIX"].rstrip("/") + "/" + config["OPENAPI_JSON_PATH"]
    return render_template("apidocs/swagger_ui.html", title=config["API_TITLE"], spec_url=spec_url)


@bp.get("/docs/assets/<name>")
@own_cache_control
def asset(name: str):
    folder = ASSETS.get(name)
    if folder is None:
        abort(404)
    return send_from_directory(folder, name, max_age=3600)
