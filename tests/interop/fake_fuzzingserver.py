"""`wsx autobahn-client` against a small stand-in for the Autobahn fuzzingserver, built on Python
websockets. It speaks the suite's protocol (GET /getCaseCount, /runCase?case=N&agent=A,
/updateReports?agent=A), runs its own cases — text, binary, all length encodings, fragmented
messages with code points split across frames, pings between fragments, close codes, a masked
frame (1002) and invalid UTF-8 (1007) — checks every echo, and asserts that all cases passed.

Usage: fake_fuzzingserver.py WSX"""

import asyncio
import os
import sys
import urllib.parse

from interop_support import Checks, require_websockets

websockets = require_websockets()
from websockets.exceptions import ConnectionClosed  # noqa: E402

TIMEOUT = 20
OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2


class CaseFailed(Exception):
    pass


async def expect_echo(ws, sent, what):
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    if got != sent:
        raise CaseFailed(f"{what}: echo differs ({len(got)} vs {len(sent)})")


async def expect_close(ws, code, what):
    """The testee must fail the connection with `code`."""
    try:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        raise CaseFailed(f"{what}: the testee delivered a message instead of closing")
    except ConnectionClosed:
        pass
    if ws.close_code != code:
        raise CaseFailed(f"{what}: close code {ws.close_code}, expected {code}")


async def case_text(ws):
    await ws.send("Hello, wsx")
    await expect_echo(ws, "Hello, wsx", "short text")


async def case_binary(ws):
    data = bytes(range(256))
    await ws.send(data)
    await expect_echo(ws, data, "binary 0..255")


async def case_empty(ws):
    await ws.send("")
    await expect_echo(ws, "", "empty text")
    await ws.send(b"")
    await expect_echo(ws, b"", "empty binary")


async def case_lengths(ws):
    # 7-bit, 16-bit and 64-bit length encodings around their boundaries (RFC 6455 §5.2).
    for size in [125, 126, 127, 65535, 65536, 65537]:
        await ws.send("*" * size)
        await expect_echo(ws, "*" * size, f"text of {size}")
        data = os.urandom(size)
        await ws.send(data)
        await expect_echo(ws, data, f"binary of {size}")


async def case_big(ws):
    data = os.urandom(4 << 20)
    # 4 MiB in 64 KiB frames.
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    await ws.send(chunks)
    await expect_echo(ws, data, "4 MiB binary in 64 KiB frames")


async def case_split_code_points(ws):
    text = "κόσμε 🎉 \U0010ffff"
    raw = text.encode()
    # One frame per byte: every code point is split across frames.
    await ws.write_frame(False, OP_TEXT, raw[:1])
    for i in range(1, len(raw) - 1):
        await ws.write_frame(False, OP_CONT, raw[i:i + 1])
    await ws.write_frame(True, OP_CONT, raw[-1:])
    await expect_echo(ws, text, "text in 1-byte fragments")


async def case_ping_between_fragments(ws):
    await ws.write_frame(False, OP_TEXT, b"frag")
    waiter = await ws.ping(b"in the middle")
    await ws.write_frame(False, OP_CONT, b"men")
    # RFC 6455 §5.4: the pong must not wait for the message to end.
    try:
        await asyncio.wait_for(asyncio.shield(waiter), TIMEOUT)
    except asyncio.TimeoutError:
        raise CaseFailed("no pong while a fragmented message was open")
    await ws.write_frame(True, OP_CONT, b"ted")
    await expect_echo(ws, "fragmented", "message around a ping")


async def case_pings(ws):
    waiters = [await ws.ping(bytes([i]) * i) for i in range(10)]
    waiters.append(await ws.ping(b"p" * 125))
    done, _ = await asyncio.wait(waiters, timeout=TIMEOUT)
    if len(done) != len(waiters):
        raise CaseFailed(f"{len(done)} pongs for {len(waiters)} pings")
    await ws.pong(b"unsolicited")
    await ws.send("after pongs")
    await expect_echo(ws, "after pongs", "text after an unsolicited pong")


async def case_many_messages(ws):
    for i in range(200):
        await ws.send(f"message {i}")
    for i in range(200):
        await expect_echo(ws, f"message {i}", f"message {i} of 200")


async def case_server_close_code(ws):
    await ws.send("then close")
    await expect_echo(ws, "then close", "text before close")
    await ws.close(4001, "custom")
    if ws.close_code != 4001:
        raise CaseFailed(f"the testee answered close 4001 with {ws.close_code}")


async def case_masked_frame(ws):
    # RFC 6455 §5.1: a client fails a masked frame from the server with 1002.
    ws.transport.write(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")
    await expect_close(ws, 1002, "masked server frame")


async def case_invalid_utf8(ws):
    await ws.write_frame(True, OP_TEXT, b"\xce\xba\xed\xa0\x80")  # a surrogate
    await expect_close(ws, 1007, "invalid UTF-8")


CASES = [case_text, case_binary, case_empty, case_lengths, case_big, case_split_code_points,
         case_ping_between_fragments, case_pings, case_many_messages, case_server_close_code,
         case_masked_frame, case_invalid_utf8]


class FuzzingServer:
    def __init__(self):
        self.count_requests = 0
        self.results = {}  # case number -> "OK" or why it failed
        self.agents = set()
        self.reports = []

    async def handler(self, ws, path=None):
        url = urllib.parse.urlsplit(ws.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/getCaseCount":
            self.count_requests += 1
            await ws.send(str(len(CASES)))
            await ws.close()
        elif url.path == "/runCase":
            number = int(query["case"][0])
            self.agents.add(query["agent"][0])
            try:
                await CASES[number - 1](ws)
                if ws.open:
                    await ws.close()
                self.results[number] = "OK"
            except (CaseFailed, ConnectionClosed, asyncio.TimeoutError) as e:
                self.results[number] = f"{CASES[number - 1].__name__}: {e!r}"
                await ws.close()
        elif url.path == "/updateReports":
            self.reports.append(query["agent"][0])
            await ws.close()
        else:
            await ws.close(1008, "unknown path")


async def main(wsx):
    checks = Checks("wsx autobahn-client vs a fake fuzzingserver")
    suite = FuzzingServer()
    server = await websockets.serve(suite.handler, "127.0.0.1", 0, max_size=None)
    port = server.sockets[0].getsockname()[1]
    try:
        proc = await asyncio.create_subprocess_exec(
            wsx, "autobahn-client", "--url", f"ws://127.0.0.1:{port}", "--agent", "wsx test",
            stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 90)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            err = b"(killed after 90 s)"
        sys.stderr.write(err.decode(errors="replace"))
        # A case handler may still be finishing its close when the testee has moved on.
        for _ in range(500):
            if len(suite.results) == len(CASES) and suite.reports:
                break
            await asyncio.sleep(0.01)
        checks.equal(proc.returncode, 0, "wsx autobahn-client exit status")
        checks.equal(suite.count_requests, 1, "getCaseCount requests")
        for number in range(1, len(CASES) + 1):
            checks.equal(suite.results.get(number), "OK", f"case {number}")
        checks.equal(suite.agents, {"wsx test"}, "agent of every case (percent-decoded)")
        checks.equal(suite.reports, ["wsx test"], "updateReports requests")
    finally:
        server.close()
        await server.wait_closed()
    return checks


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1])).finish()
