"""`wsx chat` end to end over loopback with Python websockets as the clients: usage errors, the
page and /metrics over plain HTTP, two clients in a room (publish reaches both, unsubscribe
stops delivery), the room list, every protocol error answered without closing, the echo endpoint,
Origin refusal (403) and --allowed-origin, the connection cap (503), the message cap (1009),
and SIGTERM closing every client with 1001.

Usage: chat_server.py WSX"""

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from interop_support import Checks, WsxProcess, require_websockets  # noqa: E402

websockets = require_websockets()
from websockets.exceptions import ConnectionClosed, InvalidStatusCode  # noqa: E402

TIMEOUT = 5
MAX_MESSAGE = 4096
MAX_CONNECTIONS = 6


async def receive(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def request(ws, message):
    await ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))
    return await receive(ws)


async def quiet(ws, checks, what):
    """Nothing is pending for `ws`: a ping is answered by the very next message."""
    await asyncio.sleep(0.3)
    reply = await request(ws, {"type": "ping"})
    checks.equal(reply, {"type": "pong"}, what)


def http_get(port, path, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


async def refused_status(uri, **kwargs):
    try:
        ws = await asyncio.wait_for(websockets.connect(uri, **kwargs), TIMEOUT)
    except InvalidStatusCode as error:
        return error.status_code
    await ws.close()
    return 101


async def room_and_errors(port, checks):
    base = f"ws://127.0.0.1:{port}"
    async with websockets.connect(base + "/ws") as alice, \
            websockets.connect(base + "/ws") as bob:
        welcome = await receive(alice)
        checks.equal(welcome["type"], "welcome", "a client is welcomed first")
        checks.check(welcome["nick"].startswith("guest-"), f"default nick: {welcome}")
        checks.equal((welcome["max_topic"], welcome["max_nick"]), (64, 32), "welcome limits")
        checks.check((await receive(bob))["nick"] != welcome["nick"],
                     "two guests get different default nicks")

        checks.equal(await request(alice, {"type": "nick", "nick": "alice"}),
                     {"type": "nick", "nick": "alice"}, "nick is acknowledged")
        await request(bob, {"type": "nick", "nick": "bob"})
        for ws in (alice, bob):
            checks.equal(await request(ws, {"type": "subscribe", "topic": "lobby"}),
                         {"type": "subscribed", "topic": "lobby"}, "subscribe is acknowledged")
        checks.equal(await request(alice, {"type": "subscribe", "topic": "lobby"}),
                     {"type": "subscribed", "topic": "lobby"}, "subscribing twice is harmless")

        rooms = await request(bob, {"type": "rooms"})
        checks.equal(rooms, {"type": "rooms", "rooms": [{"topic": "lobby", "subscribers": 2}]},
                     "the room list counts members")

        before = int(time.time() * 1000)
        text = "hi bob \U0001F389 <b>not bold</b>"
        await alice.send(json.dumps({"type": "publish", "topic": "lobby", "data": text}))
        for name, ws in (("bob", bob), ("alice", alice)):
            message = await receive(ws)
            checks.equal((message["type"], message["topic"], message["data"], message["from"]),
                         ("message", "lobby", text, "alice"), f"{name} receives the message")
            checks.check(before - 1000 <= message["time"] <= int(time.time() * 1000) + 1000,
                         f"message time is the server's clock in ms: {message['time']}")

        structured = {"text": "hello", "tags": [1, None, True]}
        await bob.send(json.dumps({"type": "publish", "topic": "lobby", "data": structured}))
        checks.equal((await receive(alice))["data"], structured, "any JSON value as data")
        checks.equal((await receive(bob))["from"], "bob", "the sender receives its own copy")

        checks.equal(await request(bob, {"type": "unsubscribe", "topic": "lobby"}),
                     {"type": "unsubscribed", "topic": "lobby"}, "unsubscribe is acknowledged")
        await alice.send(json.dumps({"type": "publish", "topic": "lobby", "data": "anyone?"}))
        checks.equal((await receive(alice))["data"], "anyone?", "alice still gets her message")
        await quiet(bob, checks, "after unsubscribe nothing more reaches bob")
        rooms = await request(bob, {"type": "rooms"})
        checks.equal(rooms["rooms"], [{"topic": "lobby", "subscribers": 1}],
                     "the room list follows unsubscribe")

        errors = [
            ("not json", "invalid JSON"),
            ("[1,2]", "a message must be a JSON object"),
            ("{}", 'missing "type"'),
            (json.dumps({"type": "dance"}), 'unknown type "dance"'),
            (json.dumps({"type": "subscribe"}), 'missing "topic"'),
            (json.dumps({"type": "subscribe", "topic": 7}), '"topic" must be a string'),
            (json.dumps({"type": "subscribe", "topic": "x" * 65}),
             "topic is longer than 64 bytes"),
            (json.dumps({"type": "publish", "topic": "lobby"}), 'missing "data"'),
            (json.dumps({"type": "publish", "topic": "lobby", "data": 1}), "not subscribed"),
            (json.dumps({"type": "unsubscribe", "topic": "lobby"}), "not subscribed"),
            ("[" * 3000, "JSON nested deeper than 32 levels"),
        ]
        for text, expected in errors:
            reply = await request(bob, text)
            checks.equal((reply["type"], reply["message"]), ("error", expected),
                         f"error for {text[:40]!r}")
        reply = await request(bob, b"\x01\x02")
        checks.equal(reply["type"], "error", "a binary message is answered with an error")
        reply = await request(bob, json.dumps({"type": "publish", "topic": "lobby", "data": 1}))
        checks.equal(reply.get("topic"), "lobby", "a topic error names the topic")
        await quiet(bob, checks, "the connection survives every error")

        # A connection may be in at most 64 rooms.
        for i in range(64):
            await bob.send(json.dumps({"type": "subscribe", "topic": f"room {i}"}))
        replies = [await receive(bob) for _ in range(64)]
        checks.check(all(r["type"] == "subscribed" for r in replies), "64 rooms are fine")
        await bob.send(json.dumps({"type": "subscribe", "topic": "room 64"}))
        reply = await receive(bob)
        checks.equal((reply["type"], reply.get("topic")), ("error", "room 64"),
                     "the 65th room is refused")
        checks.check(reply["message"].startswith("cannot subscribe"), f"why: {reply}")
        rooms = await request(alice, {"type": "rooms"})
        checks.equal(len(rooms["rooms"]), 65, "the room list has every room")
        for i in range(64):
            await bob.send(json.dumps({"type": "unsubscribe", "topic": f"room {i}"}))
        replies = [await receive(bob) for _ in range(64)]
        checks.check(all(r["type"] == "unsubscribed" for r in replies), "leaving 64 rooms")
        rooms = await request(alice, {"type": "rooms"})
        checks.equal(rooms["rooms"], [{"topic": "lobby", "subscribers": 1}],
                     "empty rooms leave the list")

        # One byte over the cap closes with 1009 (RFC 6455 §7.4.1).
        await bob.send(json.dumps({"type": "publish", "topic": "lobby",
                                   "data": "x" * MAX_MESSAGE}))
        try:
            await asyncio.wait_for(bob.recv(), TIMEOUT)
            checks.check(False, "an over-long message closes the connection")
        except ConnectionClosed as closed:
            checks.equal(closed.rcvd.code if closed.rcvd else None, 1009,
                         "an over-long message closes with 1009")
        await quiet(alice, checks, "alice got nothing from the refused message")

    async with websockets.connect(base + "/echo") as echo:
        await echo.send("ping me")
        checks.equal(await asyncio.wait_for(echo.recv(), TIMEOUT), "ping me", "/echo echoes text")
        await echo.send(b"\x00\xff")
        checks.equal(await asyncio.wait_for(echo.recv(), TIMEOUT), b"\x00\xff",
                     "/echo echoes binary")


async def origins(port, checks):
    base = f"ws://127.0.0.1:{port}/ws"
    checks.equal(await refused_status(base, origin="http://evil.example"), 403,
                 "a foreign Origin is refused with 403")
    checks.equal(await refused_status(base, origin=f"http://127.0.0.1:{port}"), 101,
                 "the page's own origin is accepted")
    checks.equal(await refused_status(base), 101, "a client without Origin is accepted")
    checks.equal(await refused_status(f"ws://127.0.0.1:{port}/nowhere"), 404,
                 "an upgrade on another path gets 404")


async def connection_cap(port, checks):
    base = f"ws://127.0.0.1:{port}/ws"
    clients = [await websockets.connect(base) for _ in range(MAX_CONNECTIONS)]
    try:
        checks.equal(await refused_status(base), 503, "one connection over the cap gets 503")
        checks.equal(await refused_status(f"ws://127.0.0.1:{port}/echo"), 503,
                     "the cap covers /echo too")
    finally:
        for ws in clients:
            await ws.close()
    await asyncio.sleep(0.3)
    checks.equal(await refused_status(base), 101, "a slot freed by a close is usable again")


async def shutdown(server, checks):
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws")
    await receive(ws)
    checks.equal(server.stop(), 0, "wsx chat exits 0 on SIGTERM")
    try:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed as closed:
        checks.equal(closed.rcvd.code if closed.rcvd else None, 1001,
                     "SIGTERM closes clients with 1001")


async def allowed_origin(wsx, checks):
    with WsxProcess(wsx, ["chat", "--address", "127.0.0.1", "--port", "0", "--threads", "1",
                          "--allowed-origin", "http://trusted.example:3000"]) as server:
        base = f"ws://127.0.0.1:{server.port}/ws"
        checks.equal(await refused_status(base, origin="http://trusted.example:3000"), 101,
                     "--allowed-origin admits that origin")
        checks.equal(await refused_status(base, origin=f"http://127.0.0.1:{server.port}"), 101,
                     "--allowed-origin keeps same-origin")
        checks.equal(await refused_status(base, origin="http://evil.example"), 403,
                     "--allowed-origin still refuses others")


def command_line(wsx, checks):
    for args, status, what in (
            (["--port", "http"], 2, "a non-numeric --port"),
            (["--max-message", "0"], 2, "--max-message 0"),
            (["--allowed-origin", "example.com"], 2, "an --allowed-origin without a scheme"),
            (["--colour", "blue"], 2, "an unknown option"),
            (["--port"], 2, "an option without its value"),
            (["--port", "0", "--static", "/nonexistent/wsx-chat"], 1, "a missing --static dir")):
        result = subprocess.run([wsx, "chat"] + args, capture_output=True, timeout=TIMEOUT)
        checks.equal(result.returncode, status, f"wsx chat: {what} exits {status}")
        checks.check(result.stderr.startswith(b"wsx chat: "),
                     f"wsx chat: {what} says why: {result.stderr[:100]!r}")


async def main(wsx):
    checks = Checks("chat_server")
    command_line(wsx, checks)
    with WsxProcess(wsx, ["chat", "--address", "127.0.0.1", "--port", "0", "--threads", "2",
                          "--max-connections", str(MAX_CONNECTIONS),
                          "--max-message", str(MAX_MESSAGE)]) as server:
        status, content_type, body = http_get(server.port, "/")
        checks.equal(status, 200, "GET / serves the page")
        checks.check(content_type.startswith("text/html") and b"wsx chat" in body,
                     f"the page is the chat page ({content_type})")
        for path, kind in (("/chat.js", "javascript"), ("/chat.css", "text/css")):
            status, content_type, _ = http_get(server.port, path)
            checks.check(status == 200 and kind in content_type, f"GET {path}: {status}")
        status, _, body = http_get(server.port, "/metrics")
        checks.check(status == 200 and b"wsx_hub" in body, f"GET /metrics: {status}")
        status, _, _ = http_get(server.port, "/ws")
        checks.equal(status, 426, "plain GET /ws asks for an upgrade")

        await room_and_errors(server.port, checks)
        await origins(server.port, checks)
        await connection_cap(server.port, checks)
        status, _, body = http_get(server.port, "/metrics")
        checks.check(b"wsx_hub_messages" in body, "the metrics count messages")
        await shutdown(server, checks)
    await allowed_origin(wsx, checks)

    checks.finish()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
