"""common/direct_writes.py: what a direct answer sees, and what it leaves to the app."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from shopfleet.common.direct_writes import DirectAnswer, DirectWrite, DirectWriteMiddleware
from shopfleet.common.errors import Conflict


def _scope(method: str = "POST", path: str = "/things") -> Scope:
    return {"type": "http", "method": method, "path": path, "headers": [], "state": {}}


def _receive(chunks: list[bytes]) -> Receive:
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


class _App:
    """The FastAPI app's stand-in: records the body it was given, answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})


async def _call(
    answer: Any, chunks: list[bytes], scope: Scope | None = None
) -> tuple[_App, list[Message]]:
    app = _App()
    middleware = DirectWriteMiddleware(
        app, routes=[DirectWrite("POST", re.compile("/things"), "/things", answer)]
    )
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope or _scope(), _receive(chunks), send)
    return app, sent


async def test_the_answer_gets_the_whole_body_of_every_message() -> None:
    seen: list[bytes] = []

    async def answer(scope: Scope, match: re.Match[str], body: bytes) -> DirectAnswer:
        seen.append(body)
        return DirectAnswer(201, b'{"ok":true}', headers=((b"location", b"/things/1"),))

    app, sent = await _call(answer, [b'{"a":', b"1", b"}"])
    assert seen == [b'{"a":1}'] and app.bodies == []
    assert sent[0]["status"] == 201
    assert dict(sent[0]["headers"]) == {
        b"content-type": b"application/json",
        b"content-length": b"11",
        b"location": b"/things/1",
    }
    assert sent[1]["body"] == b'{"ok":true}'


async def test_stepping_aside_hands_the_app_the_same_body() -> None:
    async def answer(scope: Scope, match: re.Match[str], body: bytes) -> None:
        return None

    app, sent = await _call(answer, [b'{"a":', b"1", b"}"])
    assert app.bodies == [b'{"a":1}']
    assert sent[0]["status"] == 299


async def test_other_methods_and_paths_go_to_the_app_unread() -> None:
    async def answer(scope: Scope, match: re.Match[str], body: bytes) -> None:
        raise AssertionError("not this route")

    for scope in (_scope("PUT"), _scope(path="/things/1"), _scope(path="/other")):
        app, sent = await _call(answer, [b"x"], scope)
        assert app.bodies == [b"x"] and sent[0]["status"] == 299


async def test_a_refusal_is_a_problem_and_a_bug_is_raised() -> None:
    async def refuse(scope: Scope, match: re.Match[str], body: bytes) -> None:
        raise Conflict("Taken.", extra={"thing": 1})

    app, sent = await _call(refuse, [b"{}"])
    assert app.bodies == [] and sent[0]["status"] == 409
    assert (b"content-type", b"application/problem+json") in sent[0]["headers"]
    assert orjson.loads(sent[1]["body"])["thing"] == 1

    async def crash(scope: Scope, match: re.Match[str], body: bytes) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):  # ServiceMiddleware, outside, answers it with a 500
        await _call(crash, [b"{}"])
