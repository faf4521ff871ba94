// Echo peer for bench/compare: Node's `ws`, as its README's echo server (WebSocketServer on a
// port, send each message back with its binary flag). Node is single-threaded already.
// Usage: NODE_PATH=/usr/share/nodejs node ws_echo.js PORT   (binds 127.0.0.1)
// With PEER_TLS_CERT and PEER_TLS_KEY (PEM files) set it serves wss:// as ws's README shows:
// an https.createServer({ cert, key }) that the WebSocketServer attaches to.
'use strict';
const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const options = { maxPayload: 64 * 1024 * 1024, perMessageDeflate: false };
let wss;
if (process.env.PEER_TLS_CERT && process.env.PEER_TLS_KEY) {
  const server = https.createServer({ cert: fs.readFileSync(process.env.PEER_TLS_CERT),
                                      key: fs.readFileSync(process.env.PEER_TLS_KEY) });
  wss = new WebSocketServer({ server, ...options });
  server.listen(port, '127.0.0.1');  // ws re-emits the server's 'listening'
} else {
  wss = new WebSocketServer({ host: '127.0.0.1', port, ...options });
}
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => process.stderr.write(`ws_echo: listening on 127.0.0.1:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
