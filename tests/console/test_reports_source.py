"""The console's report pages name no data source when there is no replica to name."""


def test_the_console_names_no_source_without_a_replica(console_client):
    page = console_client("analyst").get("/console/reports/segments")
    assert page.status_code == 200
    assert 'data-testid="data-source"' not in page.get_data(as_text=True)
