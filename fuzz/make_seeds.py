#!/usr/bin/env python3
"""Writes the hand-made seed inputs under fuzz/corpus/NAME/ (seed-*). Each input starts with the
bytes its harness reads as configuration (see the harness's source); run again after changing an
input layout. Regression reproducers (regress-*) are copied in by hand and left alone here."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def frame(opcode, payload=b"", fin=True, mask=None, rsv=0):
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    m = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n <= 0xFFFF:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + bytes(mask) + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


KEY = [0x37, 0xFA, 0x21, 0x3D]  # RFC 6455 §5.7
ZERO = [0, 0, 0, 0]

# frame: raw header bytes.
write("frame", "text-unmasked", frame(1, b"Hello")[:2])
write("frame", "text-masked", frame(1, b"Hello", mask=KEY)[:6])
write("frame", "len16", frame(2, b"x" * 256)[:4])
write("frame", "len64-masked", frame(2, b"x" * 65536, mask=KEY)[:14])
write("frame", "ping", frame(9, b"")[:2])
write("frame", "close-continuation", bytes([0x88, 0x02, 0x00, 0x7E]))
write("frame", "reserved-opcode", bytes([0x83, 0x00]))
write("frame", "control-fragmented", bytes([0x09, 0x00]))
write("frame", "length-msb", bytes([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]))
write("frame", "control-126-nonminimal", bytes([0x89, 0x7E, 0x00, 0x7E]))

# close: a received close payload (and, for the writer, code + reason).
write("close", "empty", b"")
write("close", "normal", struct.pack(">H", 1000))
write("close", "reason", struct.pack(">H", 1001) + "going away".encode())
write("close", "reason-utf8", struct.pack(">H", 4000) + "κόσμε 𝄞".encode())
write("close", "one-byte", b"\x03")
write("close", "reserved-1004", struct.pack(">H", 1004))
write("close", "no-status-1005", struct.pack(">H", 1005))
write("close", "bad-utf8", struct.pack(">H", 1000) + b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")
write("close", "long-reason", struct.pack(">H", 3000) + ("é" * 70).encode())

# utf8: split seed (2 bytes), then the text.
write("utf8", "ascii", b"\x00\x00" + b"Hello, world")
write("utf8", "mixed-1byte-reads", b"\x00\x01" + "κόσμε € 𝄞 \ufffe \U0010ffff".encode())
write("utf8", "long-ascii-then-4byte", b"\x00\x06" + b"a" * 200 + "𝄞".encode() + b"b" * 70)
write("utf8", "overlong", b"\x00\x02" + b"abc\xc0\xafdef")
write("utf8", "overlong-e0", b"\x00\x00" + b"\xe0\x80\xaf")
write("utf8", "surrogate", b"\x00\x03" + b"x" * 40 + b"\xed\xa0\x80")
write("utf8", "above-10ffff", b"\x00\x00" + b"\xf4\x90\x80\x80")
write("utf8", "truncated", b"\x00\x05" + "€€€".encode()[:-1])
write("utf8", "stray-continuation", b"\x00\x07" + b"a" * 64 + b"\x80" + b"a" * 64)
write("utf8", "simd-blocks", b"\x00\x06" + ("ab€д" * 40).encode() + b"\xf0\x9f\x98")

# mask: key (4), key offset (1), source and destination alignment (1+1), split (1), payload.
for size in (0, 5, 31, 32, 33, 100, 300):
    header = bytes(KEY) + bytes([size % 4, size % 64, (size * 7) % 64, 128])
    write("mask", "len%d" % size, header + bytes(range(256)) * 2 if size == 300 else header + bytes(range(size)))
write("mask", "offset-near-max", bytes(KEY) + bytes([0x81, 3, 5, 40]) + b"z" * 77)

# extensions: header values, one per line ('#' lines are another header).
write("extensions", "deflate", "permessage-deflate; client_max_window_bits")
write("extensions", "deflate-params",
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
      "server_max_window_bits=10; client_max_window_bits=\"12\", permessage-deflate")
write("extensions", "several-headers", "foo; bar=\"baz\"\n#chat, superchat\nx-webkit-deflate-frame,,  ")
write("extensions", "bad-quoted", "permessage-deflate; client_max_window_bits=\"1 0\"")
write("extensions", "bad-separator", "a;;b")
write("extensions", "escaped", "ext; p=\"\\a\\b\\c\"")

# handshake_request: config (1), split seed (2), request.
REQUEST = ("GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Origin: http://server.example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n")
write("handshake_request", "rfc-example", b"\x04\x00\x00" + REQUEST.encode())
write("handshake_request", "rfc-example-1byte-reads-moved", b"\x84\x00\x01" + REQUEST.encode())
write("handshake_request", "deflate-offer", b"\x01\x00\x05" + REQUEST.replace(
    "Sec-WebSocket-Version", "Sec-WebSocket-Extensions: permessage-deflate; "
    "client_max_window_bits\r\nSec-WebSocket-Version").encode())
write("handshake_request", "post", b"\x00\x00\x00" + REQUEST.replace("GET", "POST").encode())
write("handshake_request", "version-8", b"\x00\x00\x03" + REQUEST.replace("n: 13", "n: 8").encode())
write("handshake_request", "bad-key", b"\x00\x00\x00" + REQUEST.replace("dGhl", "dGh").encode())
write("handshake_request", "cross-origin", b"\x00\x00\x00" + REQUEST.replace(
    "http://server.example.com", "http://evil.example").encode())
write("handshake_request", "small-limits", b"\x28\x00\x02" + REQUEST.encode())
write("handshake_request", "bare-lf", b"\x00\x00\x00" + REQUEST.replace("\r\n", "\n", 1).encode())
write("handshake_request", "obs-fold", b"\x00\x00\x00" + REQUEST.replace("\r\nUpgrade", "\r\n Upgrade").encode())

# handshake_response: config (1), split seed (2), response.
RESPONSE = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
write("handshake_response", "rfc-example", b"\x00\x00\x00" + RESPONSE.encode())
write("handshake_response", "rfc-example-1byte-reads-moved", b"\x80\x00\x01" + RESPONSE.encode())
write("handshake_response", "protocol", b"\x08\x00\x00" + RESPONSE.replace(
    "\r\n\r\n", "\r\nSec-WebSocket-Protocol: superchat\r\n\r\n").encode())
write("handshake_response", "deflate", b"\x01\x00\x04" + RESPONSE.replace(
    "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"
    "\r\n\r\n").encode())
write("handshake_response", "unrequested-extension", b"\x00\x00\x00" + RESPONSE.replace(
    "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n").encode())
write("handshake_response", "status-200", b"\x00\x00\x00" + RESPONSE.replace("101", "200").encode())
write("handshake_response", "bad-accept", b"\x00\x00\x00" + RESPONSE.replace("s3pP", "s3pQ").encode())
write("handshake_response", "no-reason", b"\x00\x00\x00" + RESPONSE.replace(
    " Switching Protocols", "").encode())

# connection_server / connection_client: options (3 bytes), split seed (2), the peer's frames.
# Options byte a: max frame (bits 0-2) and message (3-5) limits from {0, 1, 20, 125, 126, 1000,
# 64 KiB, 16 MiB}, bit 6 auto-pong off, bit 7 streaming. Byte b: echo kind (0-1), auto-fragment
# (2-3) from {0, 1, 7, 125}, close after N events (4-6), bit 7 RSV1 allowed. Byte d: bit 0 a
# 20 KiB frame per pong, bits 1-3 a forbidden send call per event.
BIG = 0x3F  # 16 MiB limits, auto-pong, whole messages
for role, mask in (("server", ZERO), ("client", None)):
    key = KEY if role == "server" else None
    h = "connection_" + role
    write(h, "echo-hello", bytes([BIG, 0x01, 0, 0, 0]) + frame(1, b"Hello", mask=key) + frame(8, struct.pack(">H", 1000), mask=mask))
    write(h, "fragments-ping-between", bytes([BIG, 0x01, 0, 0, 3]) + frame(1, "Hel€".encode()[:4], fin=False, mask=mask)
          + frame(9, b"ping!", mask=mask) + frame(0, "€lo".encode()[1:], mask=mask) + frame(8, b"", mask=mask))
    write(h, "streaming-fragments", bytes([BIG | 0x80, 0x01, 0, 0, 2]) + frame(2, b"a" * 130, fin=False, mask=mask)
          + frame(0, b"b" * 10, fin=False, mask=mask) + frame(0, b"", mask=mask) + frame(10, b"pong", mask=mask))
    write(h, "too-big-1009", bytes([2 | 2 << 3, 0x02, 0, 0, 0]) + frame(2, b"x" * 30, mask=mask))
    write(h, "message-too-big-1009", bytes([5 | 2 << 3, 0x00, 0, 0, 1]) + frame(1, b"y" * 15, fin=False, mask=mask)
          + frame(0, b"y" * 15, mask=mask))
    write(h, "invalid-utf8-1007", bytes([BIG | 0x80, 0x00, 0, 0, 4]) + frame(1, b"ok\xc0\xaf", mask=mask))
    write(h, "rsv1-allowed-shared-echo", bytes([BIG, 0x83, 0, 0, 0]) + frame(2, b"deflated?", mask=mask, rsv=4)
          + frame(1, b"plain", mask=mask))
    write(h, "auto-fragment-echo", bytes([BIG, 0x05, 0, 0, 5]) + frame(1, b"fragment me please", mask=mask)
          + frame(2, b"\x00" * 300, mask=mask))
    write(h, "close-after-two", bytes([BIG, 0x21, 0, 0, 0]) + frame(1, b"one", mask=mask) + frame(9, b"", mask=mask)
          + frame(1, b"three", mask=mask) + frame(8, struct.pack(">H", 1001) + b"bye", mask=mask))
    write(h, "wrong-masking", bytes([BIG, 0x01, 0, 0, 0]) + frame(1, b"x", mask=(None if role == "server" else KEY)))
    write(h, "bad-close-code", bytes([BIG, 0x01, 0, 0, 0]) + frame(8, struct.pack(">H", 1005), mask=mask))
    write(h, "data-after-close", bytes([BIG, 0x01, 0, 0, 0]) + frame(8, b"", mask=mask) + frame(1, b"late", mask=mask))
    write(h, "pong-bursts-short-writes", bytes([BIG, 0x00, 0x01, 0, 2]) + frame(10, b"", mask=mask) * 6)
    for misuse in range(1, 8):
        write(h, "misuse-%d" % misuse, bytes([BIG, 0x21, misuse << 1, 0, 0]) + frame(9, b"p", mask=mask)
              + frame(1, b"t", mask=mask) + frame(8, b"", mask=mask))
    write(h, "unexpected-continuation", bytes([BIG, 0x00, 0, 0, 0]) + frame(0, b"x", mask=mask))

# inflate: byte 0 picks the target (0 inflate with a limit, 1 round trip, 2 Connection).
import zlib


def raw_deflate(data, wbits=15, flush=zlib.Z_SYNC_FLUSH, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(flush)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


def messages(*ms):
    return b"".join(struct.pack(">H", len(m)) + m for m in ms)


HELLO = bytes([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])  # RFC 7692 §7.2.3.1
# Target 0: config byte (window bits 8 + b % 8, bit 3 no takeover, bits 4-7 limit from {0, 1, 100,
# 4096, 65536, 1 MiB}), piece size byte, then messages (16-bit length + DEFLATE data).
write("inflate", "limit-hello", bytes([0, 7 | 3 << 4, 2]) + messages(HELLO, bytes([0xf2, 0x00, 0x11, 0x00, 0x00])))
write("inflate", "limit-bomb-1mib", bytes([0, 7 | 4 << 4, 3]) + messages(raw_deflate(bytes(1 << 20))))
write("inflate", "limit-exact-100", bytes([0, 7 | 2 << 4, 0]) + messages(raw_deflate(b"a" * 100), raw_deflate(b"a" * 101)))
write("inflate", "limit-bfinal", bytes([0, 7 | 3 << 4, 1]) + messages(bytes([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]), HELLO))
write("inflate", "limit-not-deflate", bytes([0, 7 | 3 << 4, 1]) + messages(b"\xff\xff\xff\xff\x00"))
write("inflate", "limit-window-8", bytes([0, 0 | 3 << 4, 2]) + messages(raw_deflate(b"abcdefgh" * 60, wbits=9)))
# Target 1: config byte (window bits, bit 3 no takeover, bit 4 fragments, bit 5 release idle
# streams), levels byte (level 1 + b % 9, memLevel 1 + (b >> 4) % 9), split seed, messages.
text = ("{\"id\": 1, \"name\": \"κόσμε\", \"tags\": [\"a\", \"b\"]} " * 40).encode()
write("inflate", "round-trip-text", bytes([1, 7, 0x75, 0, 1]) + messages(text, text[:100], b""))
write("inflate", "round-trip-window-8-fragments", bytes([1, 0x10, 0x05, 0, 3]) + messages(text, bytes(range(256)) * 8))
write("inflate", "round-trip-no-takeover-release", bytes([1, 7 | 0x08 | 0x20, 0x00, 0, 0]) + messages(text, text))
# Target 2: negotiated byte (bit 0 server_no_context_takeover, bit 1 client_no_context_takeover,
# bit 2 release idle streams, bits 3-4 min_compress_size from {0, 1, 64, never}, bits 5-7 message
# limit from {0, 1, 125, 1000, 64 KiB, 1 MiB}), window bits byte (server low nibble, client
# high), tuning byte, split seed, then records: flags (opcode from {1, 2, 0, 0, 1, 2, 9, 8} by
# b % 8, bit 3 not FIN, bit 4 RSV1, bit 6 long length), length byte(s), payload.


def rec(opcode_index, payload, fin=True, rsv1=False):
    flags = opcode_index | (0 if fin else 0x08) | (0x10 if rsv1 else 0)
    if len(payload) < 256:
        return bytes([flags, len(payload)]) + payload
    n = len(payload)
    assert n < 256 * 64
    return bytes([flags | 0x40, n // 64, n % 64]) + payload


conn = bytes([2, 4 << 5, 0x77, 0x56, 0, 1])
write("inflate", "conn-hello", conn + rec(0, HELLO, rsv1=True) + rec(1, b"plain") + rec(7, struct.pack(">H", 1000)))
write("inflate", "conn-fragments", conn + rec(0, HELLO[:3], fin=False, rsv1=True) + rec(6, b"p") + rec(2, HELLO[3:5], fin=False)
      + rec(3, HELLO[5:]) + rec(1, raw_deflate(text[:4000]), rsv1=True))
write("inflate", "conn-bomb-1009", bytes([2, 3 << 5, 0x77, 0x56, 0, 0]) + rec(1, raw_deflate(bytes(100000)), rsv1=True))
write("inflate", "conn-rsv1-continuation", conn + rec(0, HELLO[:3], fin=False, rsv1=True) + rec(2, HELLO[3:], rsv1=True))
write("inflate", "conn-rsv1-ping", conn + rec(6, b"", rsv1=True))
write("inflate", "conn-bad-utf8", conn + rec(0, raw_deflate(b"ok\xc0\xaf"), rsv1=True))
write("inflate", "conn-no-takeover-window-9", bytes([2, 0x07 | 0x08, 0x11, 0x33, 0, 2]) + rec(0, raw_deflate(text[:300], wbits=9), rsv1=True)
      + rec(0, raw_deflate(text[:300], wbits=9), rsv1=True))
