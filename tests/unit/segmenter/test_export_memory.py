"""An export's record of a member is what the member schema of the API dumps (the streaming exports:
tests/integration/segmenter/test_export_memory.py)."""


def test_export_records_are_what_the_member_schema_dumps():
    from segmenter.exports import member_record
    from segmenter.serving.schemas import MemberSchema

    row = {
        "profile_id": "u:1",
        "user_id": "1",
        "email": "a@example.com",
        "anonymous_ids": ["x"],
        "traits": {"plan": "pro"},
        "entered_at": 1_700_000_000_123,
        "context": {"cart": [{"product_id": "p", "at": 1_700_000_000_000}], "last_cart_add_at": 1_700_000_000_000},
    }
    assert member_record(row) == MemberSchema().dump(row)
