"""Python websockets (a real third-party server) with `wsx connect` as the client: lines in,
echoes out, binary, Origin and subprotocol headers, the close handshake at end of input, a
server-initiated close, and the precise errors for 403 and a refused port.

Usage: python_server.py WSX"""

import asyncio
import http
import socket
import sys

import interop_support
from interop_support import Checks, require_websockets

websockets = require_websockets()
from websockets.exceptions import ConnectionClosed  # noqa: E402

TIMEOUT = 30


class EchoServer:
    """Echoes every message; remembers each connection's request and close code."""

    def __init__(self):
        self.sessions = []

    async def handler(self, ws, path=None):
        session = {"path": ws.path, "headers": ws.request_headers,
                   "subprotocol": ws.subprotocol, "messages": 0}
        self.sessions.append(session)
        try:
            async for message in ws:
                session["messages"] += 1
                if message == "please close":
                    await ws.close(4001, "as you wish")
                    break
                await ws.send(message)
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        session["close_code"] = ws.close_code


def process_request(path, headers):
    # The 403 a real server gives a browser page it does not trust.
    if headers.get("Origin") == "http://evil.example":
        return (http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain")],
                b"forbidden origin\n")
    return None


async def closed(session):
    """The server's handler may see the close after the client process ended."""
    for _ in range(TIMEOUT * 100):
        if "close_code" in session:
            return
        await asyncio.sleep(0.01)


async def run_connect(wsx, args, stdin):
    return await interop_support.run_connect(wsx, args, stdin, TIMEOUT)


async def main(wsx):
    checks = Checks("wsx connect vs python websockets server")
    echo = EchoServer()
    server = await websockets.serve(echo.handler, "127.0.0.1", 0, subprotocols=["chat.v2"],
                                    process_request=process_request, max_size=None)
    port = server.sockets[0].getsockname()[1]
    url = f"ws://127.0.0.1:{port}/room?id=7"
    try:
        lines = ["hello", "", "κόσμε", "x" * 70000, "last line without newline"]
        stdin = ("\n".join(lines)).encode()
        code, out, err = await run_connect(wsx, [url, "--origin", "http://app.example",
                                                 "--protocol", "chat.v2",
                                                 "--header", "X-Test: 42"], stdin)
        checks.equal(code, 0, f"wsx connect exit status (stderr: {err.decode()[-300:]})")
        checks.equal(out.decode().split("\n"), lines + [""], "echoed lines on stdout")
        session = echo.sessions[-1] if echo.sessions else {}
        checks.equal(session.get("path"), "/room?id=7", "request target")
        headers = session.get("headers", {})
        checks.equal(headers.get("Origin"), "http://app.example", "Origin header")
        checks.equal(headers.get("X-Test"), "42", "extra header")
        checks.equal(headers.get("Host"), f"127.0.0.1:{port}", "Host header")
        checks.equal(session.get("subprotocol"), "chat.v2", "negotiated subprotocol")
        checks.equal(session.get("messages"), len(lines), "messages the server received")
        await closed(session)
        checks.equal(session.get("close_code"), 1000, "close code at end of input")

        code, out, err = await run_connect(wsx, [url, "--binary", "--quiet"], b"AB\n\x00\xff\n")
        checks.equal(code, 0, "exit status in binary mode")
        checks.equal(out.decode().split("\n"), ["4142", "00ff", ""], "binary echoes as hex")

        # The server closes first: wsx connect answers with the same code and exits.
        code, out, err = await run_connect(wsx, [url, "--quiet"], b"one\nplease close\n")
        checks.equal(out.decode(), "one\n", "output before the server's close")
        checks.check(b"4001" in err, f"the server's close code is reported: {err.decode()}")
        checks.equal(code, 1, "exit status after an unusual close code")
        await closed(echo.sessions[-1])
        checks.equal(echo.sessions[-1].get("close_code"), 4001, "client echoed close 4001")

        # Refusals reach the user as precise messages and exit status 1.
        code, out, err = await run_connect(wsx, [url, "--origin", "http://evil.example"], b"")
        checks.equal(code, 1, "exit status when the server answers 403")
        checks.check(b"HTTP 403" in err, f"403 reported: {err.decode().strip()}")

        with socket.socket() as s:  # a port that is free right now
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        code, out, err = await run_connect(wsx, [f"ws://127.0.0.1:{free}/"], b"")
        checks.equal(code, 1, "exit status for a refused port")
        checks.check(b"connection refused by 127.0.0.1:" in err,
                     f"refusal reported: {err.decode().strip()}")
    finally:
        server.close()
        await server.wait_closed()
    return checks


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1])).finish()
