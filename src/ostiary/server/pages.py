"""The HTML pages (Jinja2 templates in `templates/`), rendered with their security headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import jinja2
from starlette.responses import HTMLResponse

from .security_headers import content_security_policy

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
STATIC: Final = Path(__file__).resolve().parent / "static"


class Pages:
    def __init__(self) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,  # every value is escaped; templates never mark anything safe
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
        )

    def render(
        self,
        name: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        form_targets: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        scripts: bool = False,
        frame_targets: Iterable[str] = (),
    ) -> HTMLResponse:
        """A page with `Cache-Control: no-store` and a CSP letting its forms reach
        `form_targets` (a client's redirect_uri) besides this server, and its iframes load
        `frame_targets` (clients' front-channel logout pages) and nothing else."""
        body = self._env.get_template(name).render(**context)
        all_headers = {
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
            "Content-Security-Policy": content_security_policy(
                form_targets, scripts=scripts, frame_targets=frame_targets
            ),
            **(headers or {}),
        }
        return HTMLResponse(body, status_code=status, headers=all_headers)
