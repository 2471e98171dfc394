from tests.widget.test_widget_browser import live  # noqa: F401  (the demo app, served for real)
