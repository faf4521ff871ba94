"""Shared by the Python interop tests: start and stop wsx processes, skip only when the peer
library is genuinely missing (meson's exit code 77), and count checks so a test fails loudly."""

import asyncio
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time

SKIP = 77  # meson: the test was skipped


def require_websockets():
    """The websockets module, or exit 77 when it is not installed (tools/packages.txt installs
    python3-websockets, so CI never skips)."""
    try:
        import websockets  # noqa: F401
        import websockets.exceptions  # noqa: F401
    except ImportError:
        print("python3-websockets is not installed for", sys.executable)
        sys.exit(SKIP)
    return websockets


async def run_connect(wsx, args, stdin, timeout):
    """Runs `wsx connect ARGS` with `stdin` as its input; (exit status, stdout, stderr), or
    (None, b"", b"timed out") when it did not end within `timeout` seconds (it is killed)."""
    proc = await asyncio.create_subprocess_exec(
        wsx, "connect", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return None, b"", b"timed out"
    return proc.returncode, out, err


class Checks:
    """Records each check; finish() prints a summary and exits non-zero on any failure."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = []

    def check(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.failed.append(what)
            print("FAIL:", what, flush=True)
        return condition

    def equal(self, actual, expected, what):
        ok = actual == expected
        if not ok:
            shown_actual = repr(actual)[:200]
            shown_expected = repr(expected)[:200]
            what = f"{what}: got {shown_actual}, expected {shown_expected}"
        return self.check(ok, what)

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {len(self.failed)} failed", flush=True)
        sys.exit(1 if self.failed else 0)


class WsxProcess:
    """A wsx server command on 127.0.0.1 with a kernel-chosen port, read from its stderr
    banner; stderr keeps being drained (and echoed) so the process never blocks on it."""

    def __init__(self, wsx, args, banner=r"listening on 127\.0\.0\.1:(\d+)", timeout=10.0,
                 env=None):
        self.proc = subprocess.Popen([wsx] + args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.lines = []
        self.port = None
        pattern = re.compile(banner)
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buffered = b""
        while self.port is None:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                self.stop()
                raise RuntimeError(f"wsx {' '.join(args)} did not start: {self.lines}")
            chunk = os.read(self.proc.stderr.fileno(), 4096)
            if not chunk:
                self.stop()
                raise RuntimeError(f"wsx {' '.join(args)} exited: {self.lines}")
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                text = line.decode(errors="replace")
                self.lines.append(text)
                match = pattern.search(text)
                if match:
                    self.port = int(match.group(1))
        selector.close()
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stops the process by its pid; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
