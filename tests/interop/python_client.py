"""Python websockets (a real third-party client) against `wsx echo`: messages of 0 B to 1 MiB,
fragmented sends, ping/pong, close codes, a protocol error, and the handshake refusals a real
client sees (403 for a bad Origin, 503 over the connection limit).

Usage: python_client.py WSX"""

import asyncio
import os
import sys

from interop_support import Checks, WsxProcess, require_websockets

websockets = require_websockets()
from websockets.exceptions import ConnectionClosed, InvalidStatusCode  # noqa: E402

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20]
TIMEOUT = 20


async def echo_messages(checks, url):
    async with websockets.connect(url, max_size=None) as ws:
        for size in SIZES:
            text = "".join(chr(0x61 + i % 26) for i in range(size))
            await ws.send(text)
            checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), text, f"text echo {size}")
            data = os.urandom(size)
            await ws.send(data)
            checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), data, f"binary echo {size}")
        # Multi-byte UTF-8, including a 4-byte code point and U+FFFF.
        text = "κόσμε 🎉 \uffff end"
        await ws.send(text)
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), text, "UTF-8 text echo")


async def fragmented(checks, url):
    async with websockets.connect(url, max_size=None) as ws:
        parts = ["frag", "mented ", "text ", "message"]
        await ws.send(parts)  # an iterable: one frame per element
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), "".join(parts),
                     "fragmented text echo")
        chunks = [os.urandom(997) for _ in range(70)]
        await ws.send(chunks)
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), b"".join(chunks),
                     "fragmented binary echo (70 x 997 bytes)")

        # A ping between the fragments of a message is answered at once (RFC 6455 §5.4).
        pong_seen = []

        async def with_ping():
            yield "before "
            waiter = await ws.ping(b"between")
            await asyncio.wait_for(waiter, TIMEOUT)
            pong_seen.append(True)
            yield "after"

        await ws.send(with_ping())
        checks.check(pong_seen == [True], "pong for a ping between fragments")
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), "before after",
                     "fragmented message around a ping")


async def ping_pong(checks, url):
    async with websockets.connect(url) as ws:
        for payload in [b"", b"x", bytes(range(125))]:
            waiter = await ws.ping(payload)
            try:
                await asyncio.wait_for(waiter, TIMEOUT)
                checks.check(True, f"pong for ping of {len(payload)} bytes")
            except asyncio.TimeoutError:
                checks.check(False, f"pong for ping of {len(payload)} bytes")
        waiters = [await ws.ping(str(i).encode()) for i in range(10)]
        done, _ = await asyncio.wait(waiters, timeout=TIMEOUT)
        checks.equal(len(done), 10, "pongs for 10 pings back to back")
        await ws.pong(b"unsolicited")  # must be ignored
        await ws.send("still open")
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), "still open",
                     "echo after an unsolicited pong")


async def close_codes(checks, url):
    for code, reason in [(1000, ""), (1000, "bye"), (1001, "going"), (3000, ""),
                         (4999, "custom")]:
        ws = await websockets.connect(url)
        await ws.close(code, reason)
        checks.equal(ws.close_code, code, f"server echoes close code {code}")
    # A reserved opcode (3) from the client: the server fails the connection with 1002.
    ws = await websockets.connect(url)
    ws.transport.write(bytes([0x83, 0x80, 1, 2, 3, 4]))
    try:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        checks.check(False, "server fails a reserved opcode")
    except ConnectionClosed:
        checks.equal(ws.close_code, 1002, "close code for a reserved opcode")
    # Invalid UTF-8 in a text message: 1007.
    ws = await websockets.connect(url)
    await ws.write_frame(True, 0x1, b"\xce\xba\xed\xa0\x80")
    try:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        checks.check(False, "server fails invalid UTF-8")
    except ConnectionClosed:
        checks.equal(ws.close_code, 1007, "close code for invalid UTF-8")


async def origin_policy(checks, port):
    url = f"ws://127.0.0.1:{port}/"
    try:
        ws = await websockets.connect(url, origin="http://evil.example")
        await ws.close()
        checks.check(False, "a foreign Origin is refused")
    except InvalidStatusCode as e:
        checks.equal(e.status_code, 403, "status for a foreign Origin")
    # Same origin (the Origin's host:port is the Host header) is accepted.
    ws = await websockets.connect(url, origin=f"http://127.0.0.1:{port}")
    await ws.send("same origin")
    checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), "same origin", "same-origin echo")
    await ws.close()


async def connection_limit(checks, port):
    url = f"ws://127.0.0.1:{port}/"
    first = await websockets.connect(url)
    try:
        second = await websockets.connect(url)
        await second.close()
        checks.check(False, "a connection over the limit is refused")
    except InvalidStatusCode as e:
        checks.equal(e.status_code, 503, "status over the connection limit")
    await first.close()


async def shutdown_close(checks, server, url):
    ws = await websockets.connect(url)
    await ws.send("x")
    await asyncio.wait_for(ws.recv(), TIMEOUT)
    server.proc.terminate()  # graceful stop: 1001 to every session
    try:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        checks.check(False, "server shutdown closes the session")
    except ConnectionClosed:
        checks.equal(ws.close_code, 1001, "close code at server shutdown")


async def main(wsx):
    checks = Checks("python websockets client vs wsx echo")
    with WsxProcess(wsx, ["echo", "--address", "127.0.0.1", "--port", "0"]) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        await echo_messages(checks, url)
        await fragmented(checks, url)
        await ping_pong(checks, url)
        await close_codes(checks, url)
        await origin_policy(checks, server.port)
        await shutdown_close(checks, server, url)
        checks.equal(server.stop(), 0, "wsx echo exit status after SIGTERM")
    with WsxProcess(wsx, ["echo", "--address", "127.0.0.1", "--port", "0",
                          "--max-connections", "1"]) as server:
        await connection_limit(checks, server.port)
    return checks


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 100)).finish()
