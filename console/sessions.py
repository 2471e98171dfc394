"""Cookie sessions for the console, and for nothing else.

The API stays stateless: outside `/console` no session is opened (Flask hands the request a
NullSession) and no cookie is ever set. Under `/console` the session is Flask's signed cookie,
scoped to the `/console` path, HttpOnly, SameSite=Lax, Secure when CONSOLE_COOKIE_SECURE
(by default in production). It is permanent with a lifetime of CONSOLE_IDLE_MINUTES and
re-signed on every request, so a cookie not used for that long is refused when read back
(its signature's age is checked): that is the idle timeout.
"""

from flask.sessions import SecureCookieSessionInterface

PREFIX = "/console"


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class ConsoleSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if not is_console_path(request.path):
            return None  # the stateless API: a NullSession, nothing read or written
        return super().open_session(app, request)

    def get_cookie_name(self, app) -> str:
        return app.config["CONSOLE_COOKIE_NAME"]

    def get_cookie_path(self, app) -> str:
        return PREFIX

    def get_cookie_domain(self, app):
        return None  # this host only

    def get_cookie_httponly(self, app) -> bool:
        return True

    def get_cookie_secure(self, app) -> bool:
        return app.config["CONSOLE_COOKIE_SECURE"]

    def get_cookie_samesite(self, app) -> str:
        return "Lax"
