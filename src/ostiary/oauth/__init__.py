"""The OAuth 2.1 protocol core: sans-IO, storage through the `Store` protocol."""

from __future__ import annotations
