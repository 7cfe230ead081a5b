// The real Channelstream JS client (tests/e2e/vendor/, from the channelstream 0.7.1 wheel) in
// headless Chromium, over wss:// to a Herald serving TLS. Chromium trusts the server's key
// alone, by its SPKI hash (--ignore-certificate-errors-spki-list, from run.sh's TLS_SPKI):
// any other certificate still fails. The page is served over plain HTTP by a tiny local
// server on another port, as from a real site; the test makes the signed calls over https
// itself (NODE_EXTRA_CA_CERTS trusts the test CA). playwright-core and the vendored client
// come from tests/e2e (its setup.sh installs them and Debian's chromium).
//
//   TLS_HOST, TLS_PORT, TLS_SPKI, CHROMIUM (default /usr/bin/chromium)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createHmac, createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const e2e = path.join(here, '..', 'e2e');
const { chromium } = createRequire(path.join(e2e, 'package.json'))('playwright-core');
const HOST = process.env.TLS_HOST || '127.0.0.1';
const PORT = Number(process.env.TLS_PORT || 8443);
const BASE = `https://${HOST}:${PORT}`;
const SPKI = process.env.TLS_SPKI;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RUN = randomBytes(4).toString('hex');

/** itsdangerous TimestampSigner (django-concat key, SHA1) over "channelstream". */
function token(secret = 'secret') {
  const b64 = (b) => b.toString('base64url');
  const key = createHash('sha1').update('itsdangerous.Signersigner' + secret).digest();
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000)));
  let i = 0;
  while (i < 7 && ts[i] === 0) i++;
  const signed = 'channelstream.' + b64(ts.subarray(i));
  return signed + '.' + b64(createHmac('sha1', key).update(signed).digest());
}

async function api(pathname, body) {
  const res = await fetch(BASE + pathname, {
    method: 'POST',
    headers: { 'x-channelstream-secret': token(), 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script type="module">
import { ChannelStreamConnection } from '/vendor/index.js';
// Open the connection's websocket and resolve with the first message it delivers.
window.listenOnce = (connId, wsUrl) => new Promise((resolve, reject) => {
  const c = new ChannelStreamConnection();
  c.connectionId = connId;
  c.websocketUrl = wsUrl;
  c.shouldReconnect = false;
  c.heartbeats = false;
  const timer = setTimeout(() => reject(new Error('no message within 10 s')), 10000);
  c.listenOpenedCallback = () => { window.opened = true; };
  c.listenErrorCallback = () => { clearTimeout(timer); reject(new Error('websocket error')); };
  c.listenMessageCallback = (messages) => {
    const m = messages.find((x) => x.type === 'message');
    if (m) { clearTimeout(timer); resolve({ url: c.websocket.url, message: m }); }
  };
  c.startListening();
});
window.ready = true;
</script>`;

let server;
let browser;
let page;

before(async () => {
  assert.ok(SPKI, 'TLS_SPKI (base64 SHA-256 of the server key) is set by run.sh');
  server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      return res.end(PAGE);
    }
    const m = /^\/vendor\/([\w.-]+\.js)$/.exec(url.pathname);
    if (m) {
      try {
        const body = await readFile(path.join(e2e, 'vendor', m[1]));
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
        return res.end(body);
      } catch {
        // 404 below
      }
    }
    res.writeHead(404);
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${SPKI}`],
  });
  page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10000 });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
});

test('the Channelstream JS client in Chromium receives a message over wss://', async () => {
  const room = `tls-room-${RUN}`;
  const conn = await api('/connect', { username: `tls-user-${RUN}`, channels: [room] });
  assert.equal(conn.status, 200);
  const got = page.evaluate(([id, ws]) => window.listenOnce(id, ws),
    [conn.json.conn_id, `wss://${HOST}:${PORT}/ws`]);
  await page.waitForFunction(() => window.opened === true, null, { timeout: 10000 });
  const sent = await api('/message', [{ channel: room, user: 'bob', message: { text: 'over TLS' } }]);
  assert.equal(sent.status, 200);
  const { url, message } = await got;
  assert.match(url, /^wss:\/\//);
  assert.equal(message.channel, room);
  assert.deepEqual(message.message, { text: 'over TLS' });
});
