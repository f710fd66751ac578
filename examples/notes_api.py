"""A notes API protected by Ostiary: the example the README's "Protect your API" uses.

Run it next to a running `ostiary serve`:

    OSTIARY_ISSUER=http://127.0.0.1:8000 uvicorn examples.notes_api:app --port 8001

It accepts access tokens whose audience is https://notes.example (ask for them with
`resource=https://notes.example`): `GET /notes` needs the scope notes:read, `POST /notes`
notes:write, and `GET /me` any valid token. Notes live in memory, per user.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from ostiary.protect import ResourceServer

AUDIENCE = "https://notes.example"

api = ResourceServer(issuer=os.environ["OSTIARY_ISSUER"], audience=AUDIENCE)
notes: defaultdict[str, list[str]] = defaultdict(list)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await api.aclose()


app = FastAPI(title="Notes", lifespan=lifespan)
reader = api.require_scopes("notes:read")
writer = api.require_scopes("notes:write")
anyone = api.require_scopes()


class NewNote(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


@app.get("/notes")
async def list_notes(claims: dict[str, Any] = Depends(reader)) -> list[str]:
    return notes[claims["sub"]]


@app.post("/notes", status_code=201)
async def add_note(note: NewNote, claims: dict[str, Any] = Depends(writer)) -> dict[str, str]:
    notes[claims["sub"]].append(note.text)
    return {"text": note.text}


@app.get("/me")
async def me(claims: dict[str, Any] = Depends(anyone)) -> dict[str, Any]:
    return {"sub": claims["sub"], "client_id": claims["client_id"], "scope": claims.get("scope")}
