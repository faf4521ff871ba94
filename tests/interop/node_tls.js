// wss:// with Node `ws` over Node's tls/https, in both roles, on certificates made at test time by
// tests/net/tls_certs.sh: `wsx echo --tls-cert/--tls-key` against a ws client (text and binary
// 0 B to 1 MiB, ping, close codes, an unknown CA refused), and `wsx connect wss://` against a ws
// server on https (echo, the server's close code, a host name mismatch reported precisely).
//
// Usage: node node_tls.js WSX CERTS_SCRIPT
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const {
  requireWs, Checks, startWsx, stop, within, openQueued, nextMessage, runConnect: runConnectWith,
} = require('./interop_support');

const WebSocket = requireWs();
const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20];
const TIMEOUT = 20000;

const open = (url, options) => openQueued(url, options);
const next = (ws) => nextMessage(ws, TIMEOUT);
const runConnect = (wsx, args, input) => runConnectWith(wsx, args, input, TIMEOUT);

async function wsxServer(checks, wsx, certs) {
  const server = await startWsx(wsx, ['echo', '--port', '0', '--address', '127.0.0.1',
    '--tls-cert', path.join(certs, 'server.pem'), '--tls-key', path.join(certs, 'server.key')]);
  const url = `wss://127.0.0.1:${server.port}/`;
  const ca = fs.readFileSync(path.join(certs, 'ca.pem'));
  try {
    const ws = await open(url, { ca });
    for (const size of SIZES) {
      const text = 'abcdefghijklmnopqrstuvwxyz'.repeat(Math.ceil(size / 26)).slice(0, size);
      ws.send(text);
      const t = await next(ws);
      checks.check(!t.isBinary && t.data.toString() === text, `text echo ${size}`);
      const data = crypto.randomBytes(size);
      ws.send(data);
      const b = await next(ws);
      checks.check(b.isBinary && Buffer.compare(b.data, data) === 0, `binary echo ${size}`);
    }
    const pong = await within(TIMEOUT, new Promise((resolve) => {
      ws.once('pong', (data) => resolve(data));
      ws.ping(Buffer.from('tls ping'));
    }), 'a pong');
    checks.equal(pong.toString(), 'tls ping', 'pong over TLS');
    ws.close(4003, 'node done');
    const closed = await within(TIMEOUT, ws.closed, 'the close');
    checks.equal(closed.code, 4003, 'close code echoed over TLS');

    let refused = null;
    try {
      await open(url, { ca: fs.readFileSync(path.join(certs, 'ca2.pem')) });
    } catch (e) {
      refused = e;
    }
    checks.check(refused && /unable to (verify|get local issuer)/.test(refused.message),
      `node refuses the unknown CA: ${refused && refused.message}`);
  } finally {
    checks.equal(await stop(server.proc), 0, 'wsx echo exits cleanly');
  }
}

async function nodeServer(checks, wsx, certs) {
  const closes = [];
  const listen = (name) => new Promise((resolve) => {
    const httpsServer = https.createServer({
      cert: fs.readFileSync(path.join(certs, `${name}.pem`)),
      key: fs.readFileSync(path.join(certs, `${name}.key`)),
    });
    const wss = new WebSocket.Server({ server: httpsServer, maxPayload: 64 << 20 });
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'please close') {
          ws.close(4004, 'as you wish');
          return;
        }
        ws.send(data, { binary: isBinary });
      });
      ws.on('close', (code) => closes.push(code));
    });
    httpsServer.listen(0, '127.0.0.1', () => resolve({ httpsServer, wss }));
  });
  const good = await listen('server');
  const wrong = await listen('other');
  const port = good.httpsServer.address().port;
  const wrongPort = wrong.httpsServer.address().port;
  const ca = path.join(certs, 'ca.pem');
  try {
    const lines = ['hello', '', 'κόσμε', 'x'.repeat(70000), 'y'.repeat(1 << 20), 'last'];
    let r = await runConnect(wsx, [`wss://127.0.0.1:${port}/`, '--ca', ca], lines.join('\n'));
    checks.equal(r.code, 0, `wsx connect exit status (${r.err.slice(-300)})`);
    checks.check(r.out === `${lines.join('\n')}\n`, 'echoed lines over TLS');

    r = await runConnect(wsx, [`wss://localhost:${port}/`, '--ca', ca, '--quiet'], 'one\nplease close\n');
    checks.equal(r.out, 'one\n', 'output before the server close');
    checks.check(r.err.includes('4004'), `the server's close code: ${r.err}`);

    r = await runConnect(wsx, [`wss://localhost:${wrongPort}/`, '--ca', ca], '');
    checks.equal(r.code, 1, 'exit status for a certificate of another host');
    checks.check(r.err.includes('certificate verify failed: hostname mismatch'),
      `host mismatch reported: ${r.err.trim()}`);
  } finally {
    for (const s of [good, wrong]) {
      for (const client of s.wss.clients) client.terminate();
      s.wss.close();
      s.httpsServer.close();
    }
  }
}

async function main() {
  const [wsx, certsScript] = process.argv.slice(2);
  const checks = new Checks('wss:// with node ws');
  const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'wsx-tls-'));
  try {
    execFileSync('sh', [certsScript, certs]);
    await wsxServer(checks, wsx, certs);
    await nodeServer(checks, wsx, certs);
  } catch (e) {
    checks.check(false, `unexpected error: ${e.stack}`);
  } finally {
    fs.rmSync(certs, { recursive: true, force: true });
  }
  checks.finish();
}

main();
