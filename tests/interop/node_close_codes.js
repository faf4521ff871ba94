// Every close code, both directions, with Node `ws` as the peer (RFC 6455 §7.4, CONFORMANCE.md
// §7):
//   - ws as the client against `wsx echo` (epoll and poll): it closes with each code a peer may
//     send (1000-1003, 1007-1014, 3000, 3999, 4000, 4999), with a reason, and wsx echoes the same
//     code; a close frame with a code no peer may send (0, 999, 1004, 1005, 1006, 1015, 1016,
//     2999, 5000), written raw on ws's socket because ws refuses to send them, gets 1002;
//   - ws as the server, `wsx connect` as the client: the server closes with each valid code and
//     a reason, and `wsx connect` answers with the same code; a raw close frame with an invalid
//     code is answered with 1002.
//
// Usage: node node_close_codes.js WSX
'use strict';

const crypto = require('crypto');
const { spawn } = require('child_process');
const { requireWs, Checks, startWsx, stop, within } = require('./interop_support');

const WebSocket = requireWs();
const { WebSocketServer } = WebSocket;
const TIMEOUT = 20000;
const VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
  3999, 4000, 4999];
const INVALID = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000];

const reasonFor = (code) => `code ${code}: κόσμε`;

function closeFrame(code, masked) {
  const payload = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from('raw')]);
  if (!masked) return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), key, body]);
}

// Opens a client; resolves once open, with `closed` resolving to the server's close code.
function open(url) {
  return within(TIMEOUT, new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.closed = new Promise((done) => ws.on('close', (code) => done(code)));
    ws.on('error', () => {});  // a failed connection still emits 'close' with the code
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', () => reject(new Error('upgrade refused')));
  }), `open ${url}`);
}

async function clientSide(checks, url, backend) {
  for (const code of VALID) {
    const ws = await open(url);
    ws.close(code, reasonFor(code));
    checks.equal(await within(TIMEOUT, ws.closed, 'close'), code,
      `${backend}: wsx echo answers close ${code} with ${code}`);
  }
  for (const code of INVALID) {
    const ws = await open(url);
    ws._socket.write(closeFrame(code, true));
    checks.equal(await within(TIMEOUT, ws.closed, 'close'), 1002,
      `${backend}: wsx echo answers close ${code} with 1002`);
  }
}

// `wsx connect` with stdin held open, so that only the server ends the connection.
function runConnect(wsx, url) {
  return within(TIMEOUT, new Promise((resolve) => {
    const proc = spawn(wsx, ['connect', url, '--quiet'], { stdio: ['pipe', 'ignore', 'pipe'] });
    const err = [];
    proc.stderr.on('data', (d) => err.push(d));
    proc.on('close', () => {
      proc.stdin.destroy();
      resolve(Buffer.concat(err).toString());
    });
  }), `wsx connect ${url}`);
}

async function serverSide(checks, wsx) {
  const codes = new Map();
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', (ws, req) => {
    const path = req.url;
    const code = Number(path.split('/')[1]);
    ws.on('error', () => {});
    ws.on('close', (received) => codes.set(path, received));
    if (path.endsWith('/raw')) {
      ws._socket.write(closeFrame(code, false));
    } else {
      ws.close(code, reasonFor(code));
    }
  });
  await new Promise((resolve) => server.on('listening', resolve));
  const { port } = server.address();
  const settled = (path) => within(TIMEOUT, new Promise((resolve) => {
    const poll = () => (codes.has(path) ? resolve(codes.get(path)) : setTimeout(poll, 5));
    poll();
  }), `the server-side close of ${path}`);
  try {
    for (const code of VALID) {
      const path = `/${code}`;
      await runConnect(wsx, `ws://127.0.0.1:${port}${path}`);
      checks.equal(await settled(path), code, `wsx connect answers close ${code}`);
    }
    for (const code of INVALID) {
      const path = `/${code}/raw`;
      await runConnect(wsx, `ws://127.0.0.1:${port}${path}`);
      checks.equal(await settled(path), 1002, `wsx connect answers close ${code} with 1002`);
    }
  } finally {
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function main() {
  const wsx = process.argv[2];
  const checks = new Checks('close codes with node ws');
  for (const backend of ['epoll', 'poll']) {
    const server = await startWsx(wsx, ['echo', '--address', '127.0.0.1', '--port', '0',
      '--threads', '1', '--backend', backend]);
    try {
      await clientSide(checks, `ws://127.0.0.1:${server.port}/`, backend);
    } finally {
      checks.equal(await stop(server.proc), 0, `${backend}: wsx echo stops cleanly`);
    }
  }
  await serverSide(checks, wsx);
  checks.finish();
}

main().catch((e) => {
  console.log(`FAIL: ${e.stack}`);
  process.exit(1);
});
