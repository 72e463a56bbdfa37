"""Pytest fixtures for the erp demo services (registered in tests/conftest.py)."""
