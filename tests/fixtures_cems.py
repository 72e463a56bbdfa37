"""Pytest fixtures for the cems demo services (registered in tests/conftest.py)."""
