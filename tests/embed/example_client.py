"""Python websockets (a third-party client) against an echo example that drives proto::Connection
on a foreign event loop (examples/echo_libuv, examples/echo_asio): text, binary, a 4 MiB message,
a fragmented one, ping/pong, two connections at once, the close handshake with the client's code
echoed, a refused handshake (400 and the socket closed), and the example still serving after all
of it. Stops the example by its pid.

Usage: example_client.py EXAMPLE"""

import asyncio
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from interop_support import Checks, WsxProcess, require_websockets  # noqa: E402

websockets = require_websockets()

TIMEOUT = 20


async def echoes(checks, url, tag):
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send(f"hello {tag}")
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), f"hello {tag}", f"{tag}: text")
        data = os.urandom(1000)
        await ws.send(data)
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), data, f"{tag}: binary")
        big = os.urandom(4 << 20)
        await ws.send(big)
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT * 3), big, f"{tag}: 4 MiB binary")
        text = "κόσμε " * 20000
        await ws.send(text)
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), text, f"{tag}: 260 KB UTF-8 text")
        await ws.send(["frag", "mented"])
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), "fragmented",
                     f"{tag}: fragmented message")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, TIMEOUT)
        checks.check(True, f"{tag}: pong")
        await ws.close(4000, "bye")
        checks.equal(ws.close_code, 4000, f"{tag}: close code echoed")


def refused_handshake(checks, port):
    """A GET without the upgrade headers gets its HTTP error, then the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    checks.check(answer.startswith(b"HTTP/1.1 400 "), f"400 for a plain GET: {answer[:40]!r}")


async def main(example):
    checks = Checks(os.path.basename(example))
    with WsxProcess(example, []) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        await asyncio.gather(echoes(checks, url, "first"), echoes(checks, url, "second"))
        refused_handshake(checks, server.port)
        await echoes(checks, url, "after")
        checks.check(server.proc.poll() is None, "still serving")
    checks.finish()


asyncio.run(main(sys.argv[1]))
