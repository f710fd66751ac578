"""The authorization server over HTTP: a Starlette app, its pages, settings and keys."""
