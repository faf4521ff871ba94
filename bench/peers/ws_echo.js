// Echo peer for bench/compare: Node's `ws`, as its README's echo server (WebSocketServer on a
// port, send each message back with its binary flag). Node is single-threaded already.
// Usage: NODE_PATH=/usr/share/nodejs node ws_echo.js PORT   (binds 127.0.0.1)
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: '127.0.0.1', port, maxPayload: 64 * 1024 * 1024,
                                  perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => process.stderr.write(`ws_echo: listening on 127.0.0.1:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
