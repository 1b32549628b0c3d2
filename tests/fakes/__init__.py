"""Small real servers and helpers that stand in for the outside world in tests."""
