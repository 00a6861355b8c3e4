"""Test plugins for muone's test suite (installed as a separate distribution)."""
