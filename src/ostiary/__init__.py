"""Ostiary: secure APIs with JWT and OAuth 2."""

from __future__ import annotations

__version__ = "0.1.0"
