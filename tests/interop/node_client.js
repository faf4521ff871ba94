// Node `ws` (a real third-party client) against `wsx echo`: messages of 0 B to 1 MiB, fragmented
// sends, ping/pong, close codes, and the handshake refusals a real client sees (403, 503).
//
// Usage: node node_client.js WSX
'use strict';

const crypto = require('crypto');
const {
  requireWs, Checks, startWsx, stop, within, openQueued, nextMessage,
} = require('./interop_support');

requireWs();  // exits 77 (skip) only when ws is genuinely missing
const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20];
const TIMEOUT = 20000;

const open = (url, options) => openQueued(url, options);
const next = (ws) => nextMessage(ws, TIMEOUT);

function pong(ws, payload) {
  return within(TIMEOUT, new Promise((resolve) => {
    ws.once('pong', (data) => resolve(data));
    ws.ping(payload);
  }), 'a pong');
}

async function echoMessages(checks, url) {
  const ws = await open(url);
  for (const size of SIZES) {
    const text = 'abcdefghijklmnopqrstuvwxyz'.repeat(Math.ceil(size / 26)).slice(0, size);
    ws.send(text);
    let got = await next(ws);
    checks.check(!got.isBinary && got.data.toString() === text, `text echo ${size}`);
    const data = crypto.randomBytes(size);
    ws.send(data);
    got = await next(ws);
    checks.check(got.isBinary && Buffer.compare(got.data, data) === 0, `binary echo ${size}`);
  }
  const utf8 = 'κόσμε 🎉 \uffff';
  ws.send(utf8);
  checks.equal((await next(ws)).data.toString(), utf8, 'UTF-8 text echo');
  ws.close(1000);
  checks.equal((await ws.closed).code, 1000, 'close code after echoes');
}

async function fragmented(checks, url) {
  const ws = await open(url);
  // ws sends one frame per call with fin: false, then a final one (RFC 6455 §5.4).
  ws.send('frag', { fin: false });
  ws.send('ment', { fin: false });
  ws.ping('between');
  ws.send('ed', { fin: true });
  checks.equal((await next(ws)).data.toString(), 'fragmented', 'fragmented text with a ping between');
  const parts = [];
  for (let i = 0; i < 70; i++) parts.push(crypto.randomBytes(997));
  parts.forEach((part, i) => ws.send(part, { binary: true, fin: i === parts.length - 1 }));
  const got = await next(ws);
  checks.check(Buffer.compare(got.data, Buffer.concat(parts)) === 0, 'fragmented binary echo (70 x 997)');
  ws.close();
  await ws.closed;
}

async function pingPong(checks, url) {
  const ws = await open(url);
  for (const payload of [Buffer.alloc(0), Buffer.from('x'), crypto.randomBytes(125)]) {
    checks.equal(await pong(ws, payload), payload, `pong for a ping of ${payload.length} bytes`);
  }
  ws.pong('unsolicited');
  ws.send('still open');
  checks.equal((await next(ws)).data.toString(), 'still open', 'echo after an unsolicited pong');
  ws.close();
  await ws.closed;
}

async function closeCodes(checks, url) {
  for (const [code, reason] of [[1000, ''], [1001, 'going'], [3000, 'x'], [4999, 'custom']]) {
    const ws = await open(url);
    ws.close(code, reason);
    checks.equal((await within(TIMEOUT, ws.closed, 'close')).code, code, `server echoes close ${code}`);
  }
}

async function refusals(checks, port, limitedPort) {
  try {
    const ws = await open(`ws://127.0.0.1:${port}/`, { origin: 'http://evil.example' });
    ws.terminate();
    checks.check(false, 'a foreign Origin is refused');
  } catch (e) {
    checks.equal(e.status, 403, 'status for a foreign Origin');
  }
  const first = await open(`ws://127.0.0.1:${limitedPort}/`);
  try {
    const second = await open(`ws://127.0.0.1:${limitedPort}/`);
    second.terminate();
    checks.check(false, 'a connection over the limit is refused');
  } catch (e) {
    checks.equal(e.status, 503, 'status over the connection limit');
  }
  first.close();
  await first.closed;
}

async function main() {
  const wsx = process.argv[2];
  const checks = new Checks('node ws client vs wsx echo');
  const server = await startWsx(wsx, ['echo', '--address', '127.0.0.1', '--port', '0']);
  const limited = await startWsx(wsx, ['echo', '--address', '127.0.0.1', '--port', '0', '--max-connections', '1']);
  try {
    const url = `ws://127.0.0.1:${server.port}/`;
    await echoMessages(checks, url);
    await fragmented(checks, url);
    await pingPong(checks, url);
    await closeCodes(checks, url);
    await refusals(checks, server.port, limited.port);

    const ws = await open(url);
    const status = stop(server.proc);
    checks.equal((await within(TIMEOUT, ws.closed, 'shutdown close')).code, 1001, 'close code at server shutdown');
    checks.equal(await status, 0, 'wsx echo exit status after SIGTERM');
  } catch (e) {
    checks.check(false, `unexpected error: ${e.stack}`);
  } finally {
    await stop(server.proc);
    await stop(limited.proc);
  }
  checks.finish();
}

main();
