"""Backend-neutral model. Never imports Textual (tests/test_import_hygiene.py)."""
