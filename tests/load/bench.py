"""wsx bench against wsx echo on loopback: every mode runs, exits 0, and its JSON summary is
sane — a --messages run gets back exactly what it sent, verified, with ordered latency
percentiles and CPU accounted; text, binary, permessage-deflate and a message larger than the
generator's read buffer all echo intact; a handshakes run completes cycles; an idle run opens
every connection; a server that goes away (before or during a run) is reported as errors with
exit status 1, never a hang. Over wss:// (wsx echo with test certificates): echo runs get back
what they sent, handshakes and idle runs work, and a certificate the client does not trust fails
every connection with the reason."""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from interop_support import Checks, WsxProcess  # noqa: E402

TIMEOUT = 60
CERTS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net",
                            "tls_certs.sh")


def bench(wsx, url, args):
    result = subprocess.run([wsx, "bench", url, "--json", "--quiet"] + args,
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
    try:
        summary = json.loads(result.stdout.decode())
    except ValueError:
        summary = {}
    return result.returncode, summary, result.stderr.decode()


def check_echo_run(checks, wsx, url, args, messages, what):
    status, s, err = bench(wsx, url, args + ["--messages", str(messages)])
    checks.equal(status, 0, f"{what}: exit status ({err.strip()[:200]})")
    checks.equal(s.get("messages"), messages, f"{what}: every message echoed")
    checks.equal(s.get("sent"), messages, f"{what}: messages == sent")
    checks.equal(s.get("errors"), 0, f"{what}: no errors")
    checks.equal(s.get("mismatches"), 0, f"{what}: no mismatched echo")
    checks.equal(s.get("opened"), s.get("connections"), f"{what}: every connection opened")
    latency = s.get("latency_us", {})
    p50, p90, p99, top = (latency.get(k, -1) for k in ("p50", "p90", "p99", "max"))
    checks.check(0 < p50 <= p90 <= p99 <= top * 1.04,
                 f"{what}: latency percentiles ordered and positive: {latency}")
    checks.check(s.get("messages_per_s", 0) > 0 and s.get("elapsed_s", 0) > 0,
                 f"{what}: a positive rate over a positive time: {s.get('messages_per_s')}")
    size = s.get("size", 0)
    checks.check(abs(s.get("bytes_per_s", 0) - s.get("messages_per_s", 0) * size)
                 <= 0.01 * s.get("bytes_per_s", 1) + 1,
                 f"{what}: bytes/s is messages/s times the size")
    checks.check(s.get("cpu_s", -1) >= 0 and isinstance(s.get("saturated"), bool),
                 f"{what}: CPU accounted: {s.get('cpu_s')}")
    return s


def check_tls(checks, wsx):
    with tempfile.TemporaryDirectory() as certs:
        subprocess.run(["sh", CERTS_SCRIPT, certs], check=True, timeout=TIMEOUT)
        ca = ["--ca", os.path.join(certs, "ca.pem")]
        with WsxProcess(wsx, ["echo", "--address", "127.0.0.1", "--port", "0", "--threads", "1",
                              "--deflate", "--tls-cert", os.path.join(certs, "server.pem"),
                              "--tls-key", os.path.join(certs, "server.key")]) as server:
            url = f"wss://127.0.0.1:{server.port}/bench"
            check_echo_run(checks, wsx, url, ca + ["--connections", "10", "--size", "16"], 2000,
                           "wss binary 16 B")
            check_echo_run(checks, wsx, url, ca + ["--connections", "3", "--size", "300000",
                                                   "--in-flight", "2", "--threads", "2"], 30,
                           "wss 300 kB messages, 2 threads")
            check_echo_run(checks, wsx, url, ["--insecure", "--connections", "4", "--size",
                                              "5000", "--text", "--deflate"], 200,
                           "wss permessage-deflate, --insecure")

            status, s, err = bench(wsx, url, ca + ["--handshakes", "--connections", "4",
                                                   "--duration", "1"])
            checks.equal(status, 0, f"wss handshakes run: exit status ({err.strip()[:200]})")
            checks.check(s.get("handshakes", 0) > 0 and s.get("errors") == 0,
                         f"wss handshakes run completes cycles: {s.get('handshakes')}")

            status, s, err = bench(wsx, url, ca + ["--idle", "--connections", "50",
                                                   "--duration", "0.5"])
            checks.equal(status, 0, f"wss idle run: exit status ({err.strip()[:200]})")
            checks.equal(s.get("opened"), 50, "wss idle run opens every connection")

            status, s, err = bench(wsx, url, ["--ca", os.path.join(certs, "ca2.pem"),
                                              "--connections", "2", "--messages", "10"])
            checks.equal(status, 1, "wss with an untrusted certificate: exit status 1")
            checks.check(s.get("connect_failures") == 2 and
                         "certificate verify failed" in s.get("first_error", ""),
                         f"wss untrusted certificate: both connections fail, reason given: {s}")
            checks.equal(server.stop(), 0, "the wss echo server stopped cleanly")


def main():
    wsx = sys.argv[1]
    checks = Checks("bench")
    check_tls(checks, wsx)
    with WsxProcess(wsx, ["echo", "--address", "127.0.0.1", "--port", "0", "--threads", "1",
                          "--deflate"]) as server:
        url = f"ws://127.0.0.1:{server.port}/bench"
        check_echo_run(checks, wsx, url, ["--connections", "10", "--size", "16"], 2000,
                       "binary 16 B")
        s = check_echo_run(checks, wsx, url, ["--connections", "7", "--size", "1024",
                                              "--in-flight", "4", "--text", "--threads", "2"],
                           1001, "text 1 KiB, 4 in flight, 2 threads, uneven split")
        checks.equal(s.get("text"), True, "text run says so")
        check_echo_run(checks, wsx, url, ["--connections", "3", "--size", "300000",
                                          "--in-flight", "2"], 30,
                       "300 kB messages (bigger than the read buffer)")
        check_echo_run(checks, wsx, url, ["--connections", "4", "--size", "5000", "--text",
                                          "--deflate"], 400, "permessage-deflate")
        check_echo_run(checks, wsx, url, ["--connections", "2", "--size", "3"], 50,
                       "messages shorter than the sequence number")

        check_echo_run(checks, wsx, url, ["--connections", "10", "--in-flight", "3"], 7,
                       "fewer messages than connections")

        status, s, err = bench(wsx, url, ["--connections", "4", "--duration", "1"])
        checks.equal(status, 0, f"duration run: exit status ({err.strip()[:200]})")
        checks.check(0.9 <= s.get("elapsed_s", 0) <= 1.5,
                     f"duration run lasts about a second: {s.get('elapsed_s')}")
        checks.check(0 < s.get("messages", 0) <= s.get("sent", 0),
                     "duration run: echoes counted in the window, at most what was sent")

        status, s, err = bench(wsx, url, ["--handshakes", "--connections", "4",
                                          "--duration", "1"])
        checks.equal(status, 0, f"handshakes run: exit status ({err.strip()[:200]})")
        checks.check(s.get("handshakes", 0) > 0 and s.get("handshakes_per_s", 0) > 0,
                     f"handshakes run completes cycles: {s.get('handshakes')}")

        status, s, err = bench(wsx, url, ["--idle", "--connections", "200", "--sources", "3",
                                          "--duration", "0.5"])
        checks.equal(status, 0, f"idle run: exit status ({err.strip()[:200]})")
        checks.equal(s.get("opened"), 200, "idle run opens every connection from 3 sources")
        checks.equal(server.stop(), 0, "the echo server stopped cleanly")

    # A server that stops in the middle of a --messages run (closing with 1001) ends the run
    # with errors and status 1: the run has no deadline, so this checks that it cannot hang.
    with WsxProcess(wsx, ["echo", "--address", "127.0.0.1", "--port", "0", "--threads",
                          "1"]) as server:
        url = f"ws://127.0.0.1:{server.port}/bench"
        client = subprocess.Popen([wsx, "bench", url, "--json", "--quiet", "--connections", "5",
                                   "--messages", "1000000000"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        time.sleep(1.0)
        server.stop()
        try:
            out, err = client.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            client.kill()
            out, err = client.communicate()
            checks.check(False, "bench hung after the server stopped")
        try:
            s = json.loads(out.decode())
        except ValueError:
            s = {}
        checks.equal(client.returncode, 1, "server gone mid-run: exit status 1")
        checks.check(s.get("errors", 0) >= 5 and 0 < s.get("messages", 0) < s.get("sent", 0) + 1,
                     f"server gone mid-run: every connection reported: {s.get('errors')} "
                     f"{s.get('first_error')}")

    # Nothing listens on the port now: connecting fails, which is an error, not a hang.
    status, s, err = bench(wsx, url, ["--connections", "2", "--messages", "10"])
    checks.equal(status, 1, "no server: exit status 1")
    checks.check(s.get("connect_failures", 0) == 2 and s.get("errors", 0) >= 2,
                 f"no server: both connections reported failed: {s}")

    result = subprocess.run([wsx, "bench", url, "--size", "0"], capture_output=True,
                            timeout=TIMEOUT)
    checks.equal(result.returncode, 2, "--size 0 is a usage error")
    checks.finish()


if __name__ == "__main__":
    main()
