"""Python websockets (which offers permessage-deflate by default) against `wsx echo --deflate`:
the 101 carries the extension (RFC 7692 §5), text and binary messages of 0 B to 1 MiB echo
byte-exact, and the server's echo of compressible data arrives compressed (RSV1 set, §6). Then
`wsx echo` without --deflate: the offer is declined and messages flow uncompressed.

Usage: python_deflate.py WSX"""

import asyncio
import os
import sys

from interop_support import Checks, WsxProcess, require_websockets

websockets = require_websockets()
from websockets.extensions.permessage_deflate import PerMessageDeflate  # noqa: E402

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20]
TIMEOUT = 20

# RSV1 of every data frame the client received, recorded before it is inflated.
received_rsv1 = []
_decode = PerMessageDeflate.decode


def recording_decode(self, frame, *args, **kwargs):
    received_rsv1.append(frame.rsv1)
    return _decode(self, frame, *args, **kwargs)


PerMessageDeflate.decode = recording_decode


def extensions_header(ws):
    return ws.response_headers.get("Sec-WebSocket-Extensions")


async def compressed_echo(checks, url):
    async with websockets.connect(url, max_size=None) as ws:
        header = extensions_header(ws)
        checks.check(header is not None and header.startswith("permessage-deflate"),
                     f"101 accepts permessage-deflate (got {header!r})")
        checks.check(any(isinstance(e, PerMessageDeflate) for e in ws.extensions),
                     "the client negotiated permessage-deflate")
        for size in SIZES:
            text = "".join(chr(0x61 + i % 26) for i in range(size))
            received_rsv1.clear()
            await ws.send(text)
            checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), text, f"text echo {size}")
            if size >= 1024:
                # Repetitive text: the server compresses its echo (RFC 7692 §6.1).
                checks.check(received_rsv1[:1] == [True], f"text echo {size} is compressed")
            data = os.urandom(size)
            await ws.send(data)
            checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), data, f"binary echo {size}")
        # Multi-byte UTF-8 through the compressor.
        text = "κόσμε 🎉 \uffff end " * 100
        await ws.send(text)
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), text, "UTF-8 text echo")
        # A fragmented, compressed message from the client.
        chunks = [bytes([i % 7]) * 997 for i in range(70)]
        await ws.send(chunks)
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), b"".join(chunks),
                     "fragmented compressed binary echo (70 x 997 bytes)")


async def offer_variants(checks, url):
    # No context takeover in both directions and small windows: the server must honour them.
    extension = websockets.extensions.permessage_deflate.ClientPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True,
        server_max_window_bits=9, client_max_window_bits=10)
    async with websockets.connect(url, max_size=None, extensions=[extension]) as ws:
        header = extensions_header(ws) or ""
        checks.check("server_no_context_takeover" in header,
                     f"server_no_context_takeover answered (got {header!r})")
        checks.check("server_max_window_bits=9" in header,
                     f"server_max_window_bits=9 answered (got {header!r})")
        for size in [100, 5000, 1 << 20]:
            text = "".join(chr(0x41 + (i * 7) % 26) for i in range(size))
            await ws.send(text)
            checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), text,
                         f"echo {size} with no context takeover, small windows")


async def declined(checks, url):
    async with websockets.connect(url, max_size=None) as ws:
        checks.equal(extensions_header(ws), None, "without --deflate the offer is declined")
        checks.equal(ws.extensions, [], "no extension in use")
        text = "a" * 10000
        await ws.send(text)
        checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), text, "uncompressed echo")


async def main(wsx):
    checks = Checks("python websockets permessage-deflate vs wsx echo --deflate")
    with WsxProcess(wsx, ["echo", "--address", "127.0.0.1", "--port", "0", "--deflate"]) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        await compressed_echo(checks, url)
        await offer_variants(checks, url)
        checks.equal(server.stop(), 0, "wsx echo --deflate exit status after SIGTERM")
    with WsxProcess(wsx, ["echo", "--address", "127.0.0.1", "--port", "0"]) as server:
        await declined(checks, f"ws://127.0.0.1:{server.port}/")
        checks.equal(server.stop(), 0, "wsx echo exit status after SIGTERM")
    return checks


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 100)).finish()
