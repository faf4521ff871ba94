"""Every close code, both directions, with Python websockets as the peer (RFC 6455 section 7.4,
CONFORMANCE.md section 7):
  - websockets as the client against `wsx echo` (epoll and poll): it closes with each code a
    peer may send (1000-1003, 1007-1014, 3000, 3999, 4000, 4999), with a reason; wsx echoes the
    same code. A close frame with a code no peer may send (0, 999, 1004, 1005, 1006, 1015, 1016,
    2999, 5000), written raw because websockets refuses to send them, is answered with 1002;
  - websockets as the server, `wsx connect` as the client: the server closes with each valid
    code and a reason and `wsx connect` answers with the same code; a raw close frame with an
    invalid code is answered with 1002.

Usage: python_close_codes.py WSX"""

import asyncio
import os
import struct
import sys

from interop_support import Checks, WsxProcess, require_websockets

websockets = require_websockets()
from websockets.exceptions import ConnectionClosed  # noqa: E402

TIMEOUT = 20
VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
         4000, 4999]
INVALID = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]


def reason_for(code):
    return f"code {code}: κόσμε"  # multi-byte UTF-8 in the reason


def close_frame(code, masked):
    payload = struct.pack("!H", code) + b"raw"
    if not masked:
        return bytes([0x88, len(payload)]) + payload
    key = os.urandom(4)
    return (bytes([0x88, 0x80 | len(payload)]) + key
            + bytes(b ^ key[i % 4] for i, b in enumerate(payload)))


async def client_side(checks, url, backend):
    for code in VALID:
        ws = await websockets.connect(url)
        await asyncio.wait_for(ws.close(code, reason_for(code)), TIMEOUT)
        checks.equal(ws.close_code, code, f"{backend}: wsx echo answers close {code} with {code}")
    for code in INVALID:
        ws = await websockets.connect(url)
        ws.transport.write(close_frame(code, masked=True))
        try:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
            checks.check(False, f"{backend}: wsx echo fails close code {code}")
        except ConnectionClosed:
            checks.equal(ws.close_code, 1002, f"{backend}: wsx echo answers close {code} with 1002")


class Closer:
    """A websockets server that closes each connection with the code the path names; a path
    ending in /raw writes the close frame itself (for codes websockets will not send)."""

    def __init__(self):
        self.codes = {}

    async def handler(self, ws, path=None):
        path = ws.path
        code = int(path.split("/")[1])
        if path.endswith("/raw"):
            ws.transport.write(close_frame(code, masked=False))
        else:
            await ws.close(code, reason_for(code))
        try:
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        except asyncio.TimeoutError:
            pass
        self.codes[path] = ws.close_code

    async def code_of(self, path):
        """The close code `path` ended with; the handler may record it only after the client
        process has exited, so wait for it (bounded)."""
        for _ in range(TIMEOUT * 100):
            if path in self.codes:
                return self.codes[path]
            await asyncio.sleep(0.01)
        return None


async def run_connect(wsx, url):
    """`wsx connect` with stdin held open, so that only the server ends the connection."""
    proc = await asyncio.create_subprocess_exec(
        wsx, "connect", url, "--quiet", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        err = await asyncio.wait_for(proc.stderr.read(), TIMEOUT)
        await asyncio.wait_for(proc.wait(), TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        err = b"timed out"
    proc.stdin.close()
    return err


async def server_side(checks, wsx):
    closer = Closer()
    server = await websockets.serve(closer.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for code in VALID:
            path = f"/{code}"
            err = await run_connect(wsx, f"ws://127.0.0.1:{port}{path}")
            if code not in (1000, 1001):  # normal closes are not reported under --quiet
                checks.check(str(code).encode() in err,
                             f"wsx connect reports close {code}: {err.decode()[-200:]}")
            checks.equal(await closer.code_of(path), code, f"wsx connect answers close {code}")
        for code in INVALID:
            path = f"/{code}/raw"
            err = await run_connect(wsx, f"ws://127.0.0.1:{port}{path}")
            checks.equal(await closer.code_of(path), 1002,
                         f"wsx connect answers close {code} with 1002 ({err.decode()[-120:]})")
    finally:
        server.close()
        await server.wait_closed()


async def main(wsx):
    checks = Checks("close codes with python websockets")
    for backend in ("epoll", "poll"):
        with WsxProcess(wsx, ["echo", "--address", "127.0.0.1", "--port", "0", "--threads", "1",
                              "--backend", backend]) as server:
            await client_side(checks, f"ws://127.0.0.1:{server.port}/", backend)
            checks.equal(server.stop(), 0, f"{backend}: wsx echo stops cleanly")
    await server_side(checks, wsx)
    return checks


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1])).finish()
