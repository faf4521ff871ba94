"""wss:// with Python websockets and its ssl module, in both roles, on certificates made at test
time by tests/net/tls_certs.sh: `wsx echo --tls-cert/--tls-key` against a Python client (echo of
text and binary 0 B to 1 MiB, ping, close codes, SNI, SIGHUP reload under an open connection,
plain HTTP on the TLS port), and `wsx connect wss://` against a Python server (echo, the server's
close code, verification failures reported precisely).

Usage: python_tls.py WSX CERTS_SCRIPT"""

import asyncio
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile

import interop_support
from interop_support import Checks, WsxProcess, require_websockets

websockets = require_websockets()
from websockets.exceptions import ConnectionClosed  # noqa: E402

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]
TIMEOUT = 20


def client_context(certs, ca="ca.pem"):
    context = ssl.create_default_context(cafile=os.path.join(certs, ca))
    context.set_alpn_protocols(["http/1.1"])
    return context


def common_name(ws):
    cert = ws.transport.get_extra_info("ssl_object").getpeercert()
    for entry in cert.get("subject", ()):
        for key, value in entry:
            if key == "commonName":
                return value
    return None


async def wsx_server_checks(checks, wsx, certs):
    live_cert = os.path.join(certs, "live.pem")
    live_key = os.path.join(certs, "live.key")
    shutil.copy(os.path.join(certs, "server.pem"), live_cert)
    shutil.copy(os.path.join(certs, "server.key"), live_key)
    args = ["echo", "--port", "0", "--address", "127.0.0.1", "--threads", "2",
            "--tls-cert", live_cert, "--tls-key", live_key,
            "--tls-sni", "other.test:" + os.path.join(certs, "other.pem") + ":" +
            os.path.join(certs, "other.key")]
    with WsxProcess(wsx, args) as server:
        url = f"wss://127.0.0.1:{server.port}/"
        context = client_context(certs)
        async with websockets.connect(url, ssl=context, max_size=None) as ws:
            checks.equal(ws.transport.get_extra_info("ssl_object").selected_alpn_protocol(),
                         "http/1.1", "ALPN")
            checks.equal(common_name(ws), "wsx test server", "default certificate")
            for size in SIZES:
                text = "".join(chr(0x61 + i % 26) for i in range(size))
                await ws.send(text)
                checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), text,
                             f"text echo {size}")
                data = os.urandom(size)
                await ws.send(data)
                checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), data,
                             f"binary echo {size}")
            waiter = await ws.ping(b"over tls")
            await asyncio.wait_for(waiter, TIMEOUT)
            checks.check(True, "pong over TLS")

            # Reload on SIGHUP while this connection stays open.
            shutil.copy(os.path.join(certs, "server2.pem"), live_cert)
            shutil.copy(os.path.join(certs, "server2.key"), live_key)
            server.proc.send_signal(signal.SIGHUP)
            for _ in range(TIMEOUT * 100):
                if any("certificates reloaded" in line for line in server.lines):
                    break
                await asyncio.sleep(0.01)
            checks.check(any("certificates reloaded" in line for line in server.lines),
                         f"reload logged: {server.lines[-3:]}")
            await ws.send("after the reload")
            checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), "after the reload",
                         "the open connection survives the reload")
            async with websockets.connect(url, ssl=context) as fresh:
                checks.equal(common_name(fresh), "wsx reloaded server",
                             "a new connection gets the new certificate")
            await ws.close(4001, "bye")
            checks.equal(ws.close_code, 4001, "close code echoed over TLS")

        async with websockets.connect(f"wss://127.0.0.1:{server.port}/", ssl=context,
                                      server_hostname="other.test") as ws:
            checks.equal(common_name(ws), "wsx other.test", "SNI certificate")
            await ws.send("sni")
            checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), "sni", "echo via SNI")

        # The CA python trusts is not the server's: python refuses, wsx logs it.
        try:
            async with websockets.connect(url, ssl=client_context(certs, "ca2.pem")):
                checks.check(False, "an unknown CA must be refused")
        except ssl.SSLCertVerificationError:
            checks.check(True, "python refuses the unknown CA")

        # Plain HTTP on the TLS port: closed, logged, and the server still serves.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)
        writer.close()
        checks.check(b"HTTP" not in answer, f"no HTTP answer on the TLS port: {answer[:40]}")
        async with websockets.connect(url, ssl=context) as ws:
            await ws.send("still here")
            checks.equal(await asyncio.wait_for(ws.recv(), TIMEOUT), "still here",
                         "served after bad input")
        await asyncio.sleep(0.2)
        checks.check(any("a plain HTTP request on the TLS port" in line
                         for line in server.lines), "plain HTTP logged")
        # Python's asyncio may close before its alert is written: either way it is logged.
        checks.check(any("tlsv1 alert unknown ca" in line or
                         "closed the connection during the TLS handshake" in line
                         for line in server.lines), f"the refusal logged: {server.lines}")
        checks.equal(server.stop(), 0, "wsx echo exits cleanly")


async def run_connect(wsx, args, stdin):
    return await interop_support.run_connect(wsx, args, stdin, TIMEOUT)


async def python_server_checks(checks, wsx, certs):
    closes = []

    async def handler(ws, path=None):
        try:
            async for message in ws:
                if message == "please close":
                    await ws.close(4002, "as you wish")
                    break
                await ws.send(message)
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        closes.append(ws.close_code)

    def server_context(name):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(certs, name + ".pem"),
                                os.path.join(certs, name + ".key"))
        return context

    server = await websockets.serve(handler, "127.0.0.1", 0, ssl=server_context("server"),
                                    max_size=None)
    wrong = await websockets.serve(handler, "127.0.0.1", 0, ssl=server_context("other"))
    port = server.sockets[0].getsockname()[1]
    wrong_port = wrong.sockets[0].getsockname()[1]
    ca = os.path.join(certs, "ca.pem")
    try:
        lines = ["hello", "", "κόσμε", "x" * 70000, "y" * (1 << 20), "last"]
        code, out, err = await run_connect(
            wsx, [f"wss://localhost:{port}/", "--ca", ca], "\n".join(lines).encode())
        checks.equal(code, 0, f"wsx connect wss:// exit status ({err.decode()[-300:]})")
        checks.check(out.decode().split("\n") == lines + [""], "echoed lines over TLS")
        for _ in range(TIMEOUT * 100):
            if closes:
                break
            await asyncio.sleep(0.01)
        checks.equal(closes[-1:], [1000], "close 1000 at end of input")

        code, out, err = await run_connect(wsx, [f"wss://127.0.0.1:{port}/", "--ca", ca,
                                                 "--binary", "--quiet"], b"AB\n\x00\xff\n")
        checks.equal(out.decode().split("\n"), ["4142", "00ff", ""], "binary over TLS")

        code, out, err = await run_connect(wsx, [f"wss://127.0.0.1:{port}/", "--ca", ca,
                                                 "--quiet"], b"one\nplease close\n")
        checks.equal(out.decode(), "one\n", "output before the server's close")
        checks.check(b"4002" in err, f"the server's close code: {err.decode()}")

        code, out, err = await run_connect(wsx, [f"wss://127.0.0.1:{port}/"], b"")
        checks.equal(code, 1, "the system store does not trust the test CA")
        checks.check(b"certificate verify failed: unable to get local issuer certificate"
                     in err, f"unknown CA reported: {err.decode().strip()}")

        code, out, err = await run_connect(
            wsx, [f"wss://localhost:{wrong_port}/", "--ca", ca], b"")
        checks.equal(code, 1, "exit status for a certificate of another host")
        checks.check(b"certificate verify failed: hostname mismatch" in err,
                     f"host mismatch reported: {err.decode().strip()}")

        code, out, err = await run_connect(
            wsx, [f"wss://localhost:{wrong_port}/", "--insecure", "--quiet"], b"unchecked\n")
        checks.equal((code, out), (0, b"unchecked\n"), "--insecure connects anyway")
    finally:
        server.close()
        wrong.close()
        await server.wait_closed()
        await wrong.wait_closed()


async def main(wsx, certs_script):
    checks = Checks("wss:// with python websockets")
    certs = tempfile.mkdtemp(prefix="wsx-tls-")
    try:
        subprocess.run(["sh", certs_script, certs], check=True)
        await wsx_server_checks(checks, wsx, certs)
        await python_server_checks(checks, wsx, certs)
    finally:
        shutil.rmtree(certs, ignore_errors=True)
    return checks


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2])).finish()
