"""wsx command-line behaviour: `--help` on every subcommand prints its options on stdout and
exits 0, and `wsx connect --send TEXT ... --count N` talks to a wsx echo server without stdin,
closing with 1000 after the Nth message."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from interop_support import Checks, WsxProcess  # noqa: E402

TIMEOUT = 20


def run(wsx, args, stdin=subprocess.DEVNULL):
    return subprocess.run([wsx] + args, stdin=stdin, capture_output=True, timeout=TIMEOUT)


def main():
    wsx = sys.argv[1]
    checks = Checks("cli")

    # Each command's help names the options it parses.
    helps = {
        "demo": [],
        "echo": ["--port", "--address", "--threads", "--max-connections", "--static",
                 "--max-message", "--handshake-timeout", "--backend"],
        "connect": ["--send", "--count", "--origin", "--protocol", "--header", "--binary",
                    "--linger", "--connect-timeout", "--max-message", "--backend", "--quiet"],
        "chat": ["--port", "--address", "--static", "--threads", "--max-connections",
                 "--max-message", "--allowed-origin"],
        "autobahn-server": ["--port", "--address", "--threads", "--max-message"],
        "autobahn-client": ["--url", "--agent", "--max-message"],
        "bench": ["--connections", "--size", "--in-flight", "--duration", "--messages", "--text",
                  "--binary", "--deflate", "--threads", "--handshakes", "--idle", "--sources",
                  "--json"],
    }
    for command, options in helps.items():
        for flag in ("--help", "-h"):
            result = run(wsx, [command, flag])
            out = result.stdout.decode()
            checks.equal(result.returncode, 0, f"wsx {command} {flag} exit status")
            checks.check(out.startswith(f"usage: wsx {command}"),
                         f"wsx {command} {flag} prints its usage on stdout: {out[:80]!r}")
            for option in options:
                checks.check(option in out, f"wsx {command} {flag} lists {option}")

    result = run(wsx, ["--help"])
    checks.equal(result.returncode, 0, "wsx --help exit status")
    result = run(wsx, ["no-such-command"])
    checks.equal(result.returncode, 2, "an unknown command is a usage error")
    result = run(wsx, ["connect", "ws://127.0.0.1:1/", "--count", "0"])
    checks.equal(result.returncode, 2, "--count 0 is a usage error")
    result = run(wsx, ["echo", "--handshake-timeout", "soon"])
    checks.equal(result.returncode, 2, "a non-numeric --handshake-timeout is a usage error")

    with WsxProcess(wsx, ["echo", "--address", "127.0.0.1", "--port", "0", "--threads", "1",
                          "--handshake-timeout", "2000"]) as server:
        url = f"ws://127.0.0.1:{server.port}/cli"

        # --send replaces stdin: stdin here is a pipe left open, which would block a stdin reader.
        reader, writer = os.pipe()
        try:
            result = run(wsx, ["connect", url, "--send", "one", "--send", "two", "--send",
                               "three", "--count", "3", "--quiet"], stdin=reader)
        finally:
            os.close(reader)
            os.close(writer)
        checks.equal(result.returncode, 0, "connect --send --count exits 0 after a 1000 close")
        checks.equal(result.stdout.decode().splitlines(), ["one", "two", "three"],
                     "connect --send messages come back from the echo in order")

        # --count stops at N even when more messages arrive: the close follows the Nth.
        result = run(wsx, ["connect", url, "--send", "a", "--send", "b", "--send", "c",
                           "--count", "1"])
        checks.equal(result.returncode, 0, "connect --count 1 exits 0")
        lines = result.stdout.decode().splitlines()
        checks.check(len(lines) >= 1 and lines[0] == "a",
                     f"connect --count 1 prints the first echo: {lines}")
        checks.check("closed with 1000" in result.stderr.decode(),
                     f"connect --count closes with 1000: {result.stderr.decode()!r}")

        # --send without --count: the linger close once the echoes stopped.
        result = run(wsx, ["connect", url, "--send", "solo", "--linger", "200", "--quiet"])
        checks.equal(result.returncode, 0, "connect --send alone exits 0 after its linger")
        checks.equal(result.stdout.decode().splitlines(), ["solo"], "connect --send alone")

        # stdin still works with --count.
        result = subprocess.run([wsx, "connect", url, "--count", "2", "--quiet"],
                                input=b"x\ny\n", capture_output=True, timeout=TIMEOUT)
        checks.equal(result.returncode, 0, "connect --count with stdin exits 0")
        checks.equal(result.stdout.decode().splitlines(), ["x", "y"], "connect stdin lines")

        checks.equal(server.stop(), 0, "wsx echo stops cleanly on SIGTERM")
    checks.finish()


if __name__ == "__main__":
    main()
