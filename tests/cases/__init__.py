"""Manifests the API must accept (valid/) and reject (invalid/); `corpus` loads them."""
