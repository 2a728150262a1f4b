"""Backends: one module per repository API, translating it into the ID-based protocol of base.py."""
