"""`wsx autobahn-server` (the fuzzingclient testee) driven by Python websockets the way the
suite's section 9 does: 16 MiB messages, 4 MiB in small frames, many round trips, any Origin.

Usage: autobahn_server.py WSX"""

import asyncio
import os
import sys

from interop_support import Checks, WsxProcess, require_websockets

websockets = require_websockets()

TIMEOUT = 60


async def main(wsx):
    checks = Checks("python websockets vs wsx autobahn-server")
    with WsxProcess(wsx, ["autobahn-server", "--port", "0"]) as server:
        url = f"ws://127.0.0.1:{server.port}/runCase?case=1&agent=x"
        async with websockets.connect(url, max_size=None, origin="http://any.example") as ws:
            text = "t" * (16 << 20)
            await ws.send(text)
            checks.check(await asyncio.wait_for(ws.recv(), TIMEOUT) == text, "16 MiB text echo")
            data = os.urandom(16 << 20)
            await ws.send(data)
            checks.check(await asyncio.wait_for(ws.recv(), TIMEOUT) == data, "16 MiB binary echo")
            data = os.urandom(4 << 20)
            await ws.send([data[i:i + 4096] for i in range(0, len(data), 4096)])
            checks.check(await asyncio.wait_for(ws.recv(), TIMEOUT) == data,
                         "4 MiB echo sent in 4 KiB frames")
            for i in range(1000):
                await ws.send(b"r" * 64)
                if await asyncio.wait_for(ws.recv(), TIMEOUT) != b"r" * 64:
                    checks.check(False, f"round trip {i}")
                    break
            else:
                checks.check(True, "1000 round trips")
            await ws.close()
            checks.equal(ws.close_code, 1000, "close code")
        checks.equal(server.stop(), 0, "exit status after SIGTERM")
    return checks


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1])).finish()
