"""Property-based run of the API from its own OpenAPI document (schemathesis): no input gives a 5xx."""

import schemathesis
from hypothesis import HealthCheck, given, settings

from segmenter.rollup.chunks import run_rollup
from tests.helpers.segmenter import T0, identify, store, track


def test_no_generated_request_gives_a_server_error(app, engine, site):
    store(
        engine,
        site["site_id"],
        [
            track("Product Viewed", at=T0, anon="anon-1", product_id="p1", name="Shoe"),
            track("Product Viewed", at=T0 + 1, anon="anon-1", product_id="p2"),
            track("Product Added", at=T0, anon="anon-2", product_id="p1", price=10),
            identify("user-3", anon="anon-3", at=T0, email="ann@example.com"),
            track("Order Completed", at=T0 + 5, anon="anon-3", user="user-3", revenue=20),
        ],
    )
    run_rollup(engine, now=T0 + 7_200_000, site_id=site["site_id"])
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    tried = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def no_server_error(case):
            for auth in ({"Authorization": f"Bearer {site['api_key']}"}, {}):
                response = case.call(headers=auth, params={"writeKey": site["write_key"]})
                tried.append(response.status_code)
                assert response.status_code < 500, (case.method, case.formatted_path, case.query, response.text)

        no_server_error()
    assert len(tried) >= 200
    assert 200 in tried and 401 in tried
