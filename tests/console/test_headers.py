"""Every console page answers with a Content-Security-Policy that allows no other host."""

from tests.console.conftest import assert_strict_csp


def _console_get_routes(app) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/console") and "GET" in rule.methods and not rule.arguments
    )


def test_every_console_page_has_a_strict_csp(app, console_client):
    routes = _console_get_routes(app)
    assert "/console/settings" in routes and "/console/sign-in" in routes
    client = console_client("owner")
    anonymous = app.test_client()
    for path in routes:
        for who in (client, anonymous):
            with who.get(path) as answer:
                assert answer.status_code in (200, 302, 303), (path, answer.status_code)
                assert_strict_csp(answer)
    for path in ("/console/no-such-page", "/console/static/console.css"):
        with client.get(path) as answer:
            assert_strict_csp(answer)
    # error pages too: the 403 of a support account, and a refused form
    assert_strict_csp(console_client("support").get("/console/settings"))
    assert_strict_csp(client.post("/console/settings", data={}))


def test_pages_load_scripts_and_styles_only_from_the_console(console_client):
    page = console_client("owner").get("/console/settings").get_data(as_text=True)
    assert 'src="/console/static/vendor/htmx/htmx.min.js"' in page
    assert 'href="/console/static/console.css"' in page
    assert "<script>" not in page and "style=" not in page and "http" not in page.lower()
