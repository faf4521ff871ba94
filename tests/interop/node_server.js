// Node `ws` (a real third-party server) with `wsx connect` as the client: lines in, echoes out,
// binary, Origin / subprotocol / extra headers, the close handshake at end of input, a
// server-initiated close, and a 403 refusal reported precisely.
//
// Usage: node node_server.js WSX
'use strict';

const { requireWs, Checks, within, runConnect: runConnectWith } = require('./interop_support');

const { WebSocketServer } = requireWs();
const TIMEOUT = 30000;

const runConnect = (wsx, args, input) => runConnectWith(wsx, args, input, TIMEOUT);

// The server's 'close' event may come after the client process ended.
function closed(session) {
  return within(TIMEOUT, new Promise((resolve) => {
    const poll = () => (session.closeCode !== undefined ? resolve() : setTimeout(poll, 5));
    poll();
  }), 'the server-side close');
}

async function main() {
  const wsx = process.argv[2];
  const checks = new Checks('wsx connect vs node ws server');
  const sessions = [];
  const server = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false),
    verifyClient: (info, done) => done(info.origin !== 'http://evil.example', 403),
  });
  server.on('connection', (ws, req) => {
    const session = { url: req.url, headers: req.headers, protocol: ws.protocol, messages: 0 };
    sessions.push(session);
    ws.on('message', (data, isBinary) => {
      session.messages += 1;
      if (!isBinary && data.toString() === 'please close') {
        ws.close(4001, 'as you wish');
        return;
      }
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code) => { session.closeCode = code; });
  });
  await new Promise((resolve) => server.once('listening', resolve));
  const port = server.address().port;
  const url = `ws://127.0.0.1:${port}/room?id=7`;

  try {
    const lines = ['hello', '', 'κόσμε', 'x'.repeat(70000), 'last line without newline'];
    let r = await runConnect(wsx, [url, '--origin', 'http://app.example', '--protocol', 'chat.v2',
      '--header', 'X-Test: 42'], lines.join('\n'));
    checks.equal(r.code, 0, `wsx connect exit status (stderr: ${r.err.slice(-300)})`);
    checks.equal(r.out.split('\n'), [...lines, ''], 'echoed lines on stdout');
    const s = sessions[sessions.length - 1] || {};
    checks.equal(s.url, '/room?id=7', 'request target');
    checks.equal((s.headers || {}).origin, 'http://app.example', 'Origin header');
    checks.equal((s.headers || {})['x-test'], '42', 'extra header');
    checks.equal((s.headers || {}).host, `127.0.0.1:${port}`, 'Host header');
    checks.equal(s.protocol, 'chat.v2', 'negotiated subprotocol');
    checks.equal(s.messages, lines.length, 'messages the server received');
    await closed(s);
    checks.equal(s.closeCode, 1000, 'close code at end of input');

    r = await runConnect(wsx, [url, '--binary', '--quiet'], Buffer.from('AB\n\x00\xff\n', 'latin1'));
    checks.equal(r.code, 0, 'exit status in binary mode');
    checks.equal(r.out.split('\n'), ['4142', '00ff', ''], 'binary echoes as hex');

    r = await runConnect(wsx, [url, '--quiet'], 'one\nplease close\n');
    checks.equal(r.out, 'one\n', "output before the server's close");
    checks.check(r.err.includes('4001'), `the server's close code is reported: ${r.err}`);
    checks.equal(r.code, 1, 'exit status after an unusual close code');
    const last = sessions[sessions.length - 1];
    await closed(last);
    checks.equal(last.closeCode, 4001, 'client echoed close 4001');

    r = await runConnect(wsx, [url, '--origin', 'http://evil.example'], '');
    checks.equal(r.code, 1, 'exit status when the server answers 403');
    checks.check(r.err.includes('HTTP 403'), `403 reported: ${r.err.trim()}`);
  } catch (e) {
    checks.check(false, `unexpected error: ${e.stack}`);
  } finally {
    for (const client of server.clients) client.terminate();
    server.close();
  }
  checks.finish();
}

main();
