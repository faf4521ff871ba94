"""Idle connections against one `wsx echo` process (127.0.0.1, free port, stopped by pid):
  1. opens N WebSocket connections (default 20,000; --connections 50000 by hand) from several
     source addresses 127.0.0.2, 127.0.0.3, ... (one address has ~28,000 ephemeral ports),
     with RLIMIT_NOFILE raised for this process and the server it starts; optionally each sends
     one message (compressed when deflate was negotiated) and reads the echo, so that the zlib
     streams a message creates exist;
  2. leaves them idle with heartbeats on (the server's ping timers armed on every connection)
     and measures the server's CPU time (utime + stime, /proc/PID/stat) over --seconds: it must
     stay under --max-cpu-ms, which holds only if the timer wheel does not visit idle
     connections on every tick;
  3. reports VmRSS per idle connection over the server's baseline;
  4. closes every connection and checks that the server's VmRSS comes back to within
     --rss-margin-kib of its baseline (the server returns freed heap to the system when its
     last connection closes) and that it still echoes.
Prints one line per measurement; exits non-zero when a check fails."""

import argparse
import base64
import errno
import hashlib
import os
import resource
import select
import socket
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from interop_support import Checks, WsxProcess  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
PORTS_PER_ADDRESS = 10000  # of the 28,232 ports of the default ip_local_port_range
IN_FLIGHT = 1000
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux 4.2  # handshakes under way at once (the server takes 1,024 per thread)


def raise_nofile(needed):
    """Soft and, as root, hard RLIMIT_NOFILE up to `needed` (bounded by fs.nr_open); returns the
    limit in force. The server started afterwards inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                nr_open = int(f.read())
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, min(needed, nr_open)))
        except (OSError, ValueError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def masked_frame(first_byte, payload):
    n = len(payload)
    if n < 126:
        head = bytes([first_byte, 0x80 | n])
    elif n < 65536:
        head = bytes([first_byte, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first_byte, 0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return head + key + masked


def message_frame(size, compressed):
    """A text message of `size` bytes of JSON-like text; RSV1 and raw DEFLATE without the
    00 00 FF FF tail when `compressed` (RFC 7692 section 7.2.1)."""
    text = (b'{"user": "idle", "seq": 12345, "text": "hello there"} ' * (size // 50 + 1))[:size]
    if not compressed:
        return masked_frame(0x81, text)
    c = zlib.compressobj(6, zlib.DEFLATED, -9)  # fits any window the server may ask for (>= 9)
    data = c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH)
    return masked_frame(0xC1, data[:-4])


def frame_complete(buf):
    """Length of the first whole frame in `buf`, or 0."""
    if len(buf) < 2:
        return 0
    n = buf[1] & 0x7F
    at = 2
    if n == 126:
        if len(buf) < 4:
            return 0
        n = struct.unpack("!H", buf[2:4])[0]
        at = 4
    elif n == 127:
        if len(buf) < 10:
            return 0
        n = struct.unpack("!Q", buf[2:10])[0]
        at = 10
    return at + n if len(buf) >= at + n else 0


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Conn:
    __slots__ = ("sock", "state", "buf", "accept")


def open_connections(port, count, offer, message, checks, deadline):
    """Opens `count` upgraded connections; returns (sockets, how many negotiated deflate)."""
    ep = select.epoll()
    conns = {}
    idle = []
    deflated = 0
    started = 0
    failed = []
    frame = message_frame(message, offer is not None) if message else None

    def start_one(i):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        # The port is chosen at connect() for the whole 4-tuple, so ports other tests (or an
        # earlier run) left in TIME_WAIT toward other destinations stay usable.
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((f"127.0.0.{2 + i // PORTS_PER_ADDRESS}", 0))
        err = sock.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            failed.append(os.strerror(err))
            return
        c = Conn()
        c.sock, c.state, c.buf = sock, "connecting", b""
        key = base64.b64encode(os.urandom(16))
        c.accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        c.buf = (f"GET /idle HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
                 f"Sec-WebSocket-Version: 13\r\n"
                 + (f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else "")
                 + "\r\n").encode()
        conns[sock.fileno()] = c
        ep.register(sock.fileno(), select.EPOLLOUT)

    while (started < count or conns) and time.monotonic() < deadline:
        while started < count and len(conns) < IN_FLIGHT:
            start_one(started)
            started += 1
        for fd, events in ep.poll(1.0):
            c = conns[fd]
            if c.state == "connecting":
                if events & (select.EPOLLERR | select.EPOLLHUP):
                    failed.append("connect: " + os.strerror(
                        c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
                    ep.unregister(fd)
                    c.sock.close()
                    del conns[fd]
                    continue
                c.sock.send(c.buf)  # a few hundred bytes: fits an empty send buffer
                c.state, c.buf = "upgrading", b""
                ep.modify(fd, select.EPOLLIN)
                continue
            try:
                data = c.sock.recv(65536)
            except OSError as e:
                data = b""
                failed.append(str(e))
            if not data:
                if len(failed) < 5:
                    failed.append(f"closed in state {c.state}: {c.buf[:80]!r}")
                ep.unregister(fd)
                c.sock.close()
                del conns[fd]
                continue
            c.buf += data
            if c.state == "upgrading":
                end = c.buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                head, c.buf = c.buf[:end], c.buf[end + 4:]
                if not head.startswith(b"HTTP/1.1 101") or c.accept not in head:
                    failed.append(f"upgrade refused: {head[:60]!r}")
                    ep.unregister(fd)
                    c.sock.close()
                    del conns[fd]
                    continue
                if b"permessage-deflate" in head.lower():
                    deflated += 1
                if frame is None:
                    c.state = "idle"
                else:
                    c.sock.sendall(frame)
                    c.state = "echo"
            if c.state == "echo":
                n = frame_complete(c.buf)
                if not n:
                    continue
                c.buf = c.buf[n:]
                c.state = "idle"
            if c.state == "idle":
                ep.unregister(fd)
                idle.append(c.sock)
                del conns[fd]
    ep.close()
    for c in conns.values():
        c.sock.close()
    checks.equal(len(idle), count, f"{count} connections upgraded (failures: {failed[:3]})")
    return idle, deflated


def echo_once(port):
    """One fresh connection echoes a message and closes with 1000 (blocking, 5 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        key = base64.b64encode(os.urandom(16))
        s.sendall((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                  .encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return False
            buf += chunk
        buf = buf.split(b"\r\n\r\n", 1)[1]
        s.sendall(masked_frame(0x81, b"still there?"))
        while not frame_complete(buf):
            chunk = s.recv(4096)
            if not chunk:
                return False
            buf += chunk
        return buf[:frame_complete(buf)] == b"\x81\x0cstill there?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wsx")
    parser.add_argument("--connections", type=int,
                        default=int(os.environ.get("WSX_IDLE_CONNECTIONS", "20000")))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-cpu-ms", type=float, default=200.0,
                        help="server CPU allowed over the idle period")
    parser.add_argument("--rss-margin-kib", type=int, default=8 * 1024,
                        help="VmRSS over the baseline allowed after the last connection closed")
    parser.add_argument("--offer", default=None,
                        help="Sec-WebSocket-Extensions offer, e.g. permessage-deflate")
    parser.add_argument("--message", type=int, default=0,
                        help="bytes of one message each connection sends before idling")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra `wsx echo` argument (repeatable)")
    args = parser.parse_args()
    checks = Checks("idle")
    sanitized = os.environ.get("WSX_SANITIZE", "none") not in ("none", "")

    limit = raise_nofile(args.connections + 64)
    count = min(args.connections, limit - 64)
    if count < args.connections:
        print(f"RLIMIT_NOFILE allows {count} connections, not {args.connections}", flush=True)
    server_args = ["echo", "--address", "127.0.0.1", "--port", "0", "--threads",
                   str(args.threads), "--max-connections", str(count + 100)] + args.server_arg
    with WsxProcess(args.wsx, server_args) as server:
        pid = server.proc.pid
        checks.check(echo_once(server.port), "warm-up echo")
        time.sleep(0.3)
        baseline = rss_kib(pid)
        started = time.monotonic()
        socks, deflated = open_connections(server.port, count, args.offer, args.message, checks,
                                           started + 90)
        opened = time.monotonic() - started
        if len(socks) < count:
            print("server log:", server.lines[-5:], flush=True)
        time.sleep(0.5)  # the server thread finishes the last upgrades
        rss_open = rss_kib(pid)
        per_conn = (rss_open - baseline) * 1024 / max(len(socks), 1)
        print(f"{len(socks)} connections open in {opened:.1f}s from "
              f"{(len(socks) - 1) // PORTS_PER_ADDRESS + 1} source addresses"
              + (f", {deflated} with permessage-deflate" if args.offer else "")
              + (f", each sent a {args.message}-byte message" if args.message else ""),
              flush=True)
        print(f"VmRSS: baseline {baseline} KiB, with the connections {rss_open} KiB: "
              f"{per_conn:.0f} bytes per idle connection", flush=True)

        ticks_per_second = os.sysconf("SC_CLK_TCK")
        cpu_before = proc_cpu_ticks(pid)
        time.sleep(args.seconds)
        cpu_ms = (proc_cpu_ticks(pid) - cpu_before) * 1000 / ticks_per_second
        print(f"server CPU over {args.seconds:.0f}s idle with {len(socks)} connections "
              f"(heartbeat timers armed): {cpu_ms:.0f} ms", flush=True)
        checks.check(cpu_ms <= args.max_cpu_ms,
                     f"idle CPU {cpu_ms:.0f} ms <= {args.max_cpu_ms:.0f} ms")

        # Reset rather than FIN: no TIME_WAIT left on the client's ports (RFC 793 RST); the
        # server ends each session as abnormal (1006), as for any peer that vanishes.
        linger = struct.pack("ii", 1, 0)
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            s.close()
        # Every session ends once its FIN is read; then the heap is returned.
        drained = time.monotonic() + 20
        while time.monotonic() < drained:
            if echo_once(server.port) and rss_kib(pid) <= baseline + args.rss_margin_kib:
                break
            time.sleep(0.5)
        after = rss_kib(pid)
        print(f"VmRSS after closing them all: {after} KiB (baseline {baseline} KiB)", flush=True)
        if sanitized:
            print("sanitizer build: VmRSS return not checked (ASan quarantines freed memory)",
                  flush=True)
        else:
            checks.check(after <= baseline + args.rss_margin_kib,
                         f"VmRSS back within {args.rss_margin_kib} KiB of the baseline: {after} "
                         f"KiB vs {baseline} KiB")
        checks.check(echo_once(server.port), "the server still echoes")
        checks.equal(server.stop(), 0, "wsx echo stops cleanly on SIGTERM")
    checks.finish()


if __name__ == "__main__":
    main()
