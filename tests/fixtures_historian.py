"""Pytest fixtures for the historian demo services (registered in tests/conftest.py)."""
