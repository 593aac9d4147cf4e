"""The rollup's chunk sizes without a database: on SQLite they adapt to hold the write lock briefly (the rollups:
tests/integration/segmenter/test_rollup.py)."""


def test_sqlite_chunks_adapt_to_hold_the_write_lock_briefly():
    from segmenter.rollup.chunks import CHUNK_SECONDS, FIRST_SQLITE_CHUNK, ChunkSizer

    sizes = ChunkSizer(50_000, "sqlite")
    assert sizes.next() == FIRST_SQLITE_CHUNK
    sizes.took(CHUNK_SECONDS / 10)
    assert sizes.next() == 2 * FIRST_SQLITE_CHUNK
    sizes.took(CHUNK_SECONDS * 2)
    assert sizes.next() == FIRST_SQLITE_CHUNK
    for _ in range(10):
        sizes.took(0)
    assert sizes.next() == 50_000
    on_postgresql = ChunkSizer(50_000, "postgresql")
    on_postgresql.took(60)
    assert on_postgresql.next() == 50_000
