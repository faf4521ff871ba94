// Shared by the Node interop tests: load `ws` (skip with meson's exit code 77 only when it is
// genuinely not installed), start and stop wsx processes by pid, and count checks.
'use strict';

const { spawn } = require('child_process');

const SKIP = 77;

function requireWs() {
  try {
    return require('ws');
  } catch (e) {
    // Debian's node-ws lives in /usr/share/nodejs, on the default path of Debian's nodejs and
    // on NODE_PATH (set by tests/interop/meson.build) for other builds of node.
    console.log(`the ws module is not installed: ${e.message}`);
    process.exit(SKIP);
  }
}

class Checks {
  constructor(name) {
    this.name = name;
    this.passed = 0;
    this.failed = [];
  }
  check(condition, what) {
    if (condition) {
      this.passed += 1;
    } else {
      this.failed.push(what);
      console.log(`FAIL: ${what}`);
    }
    return condition;
  }
  equal(actual, expected, what) {
    const a = Buffer.isBuffer(actual) ? actual.toString('hex') : JSON.stringify(actual);
    const e = Buffer.isBuffer(expected) ? expected.toString('hex') : JSON.stringify(expected);
    const ok = a === e;
    return this.check(ok, ok ? what : `${what}: got ${String(a).slice(0, 200)}, expected ${String(e).slice(0, 200)}`);
  }
  finish() {
    console.log(`${this.name}: ${this.passed} passed, ${this.failed.length} failed`);
    process.exit(this.failed.length ? 1 : 0);
  }
}

// Starts a wsx server command and resolves with { proc, port, lines } once its stderr banner
// names the port it bound.
function startWsx(wsx, args, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const proc = spawn(wsx, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines = [];
    let buffered = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) {
        done = true;
        proc.kill('SIGKILL');
        reject(new Error(`wsx ${args.join(' ')} did not start: ${lines.join(' | ')}`));
      }
    }, timeoutMs);
    proc.stderr.on('data', (chunk) => {
      buffered += chunk.toString();
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        const match = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (match && !done) {
          done = true;
          clearTimeout(timer);
          resolve({ proc, port: Number(match[1]), lines });
        }
      }
    });
    proc.on('exit', (code) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`wsx ${args.join(' ')} exited with ${code}: ${lines.join(' | ')}`));
      }
    });
  });
}

// Stops a process by its pid (SIGTERM, then SIGKILL after a while); resolves with its status.
function stop(proc, timeoutMs = 10000) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      resolve(proc.exitCode);
      return;
    }
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    proc.kill('SIGTERM');
  });
}

// Rejects if `promise` has not settled within `ms`.
function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// A ws client whose messages are queued for the test to await with nextMessage(); `ws.closed`
// resolves with { code, reason }. Rejects on a connection error or a refused upgrade (the error
// carries the HTTP status).
function openQueued(url, options = {}) {
  const WebSocket = requireWs();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 64 << 20, ...options });
    ws.inbox = [];
    ws.waiters = [];
    ws.on('message', (data, isBinary) => {
      const item = { data, isBinary };
      if (ws.waiters.length) ws.waiters.shift()(item);
      else ws.inbox.push(item);
    });
    ws.closed = new Promise((done) => ws.on('close', (code, reason) => done({ code, reason: reason.toString() })));
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => {
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
      req.destroy();
    });
    ws.once('error', reject);
  });
}

// The next message of a client made by openQueued(): { data, isBinary }.
function nextMessage(ws, timeoutMs) {
  if (ws.inbox.length) return Promise.resolve(ws.inbox.shift());
  return within(timeoutMs, new Promise((resolve) => ws.waiters.push(resolve)), 'a message');
}

// Runs `wsx connect ARGS` with `input` on stdin; resolves with { code, out, err }.
function runConnect(wsx, args, input, timeoutMs) {
  return within(timeoutMs, new Promise((resolve) => {
    const proc = spawn(wsx, ['connect', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    proc.stdout.on('data', (d) => out.push(d));
    proc.stderr.on('data', (d) => err.push(d));
    proc.on('close', (code) => resolve({
      code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString(),
    }));
    proc.stdin.end(input);
  }), `wsx connect ${args.join(' ')}`);
}

module.exports = {
  requireWs, Checks, startWsx, stop, within, openQueued, nextMessage, runConnect, SKIP,
};
