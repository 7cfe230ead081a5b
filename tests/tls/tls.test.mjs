// pusher-js 8 (Node build) with forceTLS and the npm pusher SDK with useTLS against a Herald
// serving TLS (run.sh starts it with a test CA's certificate and sets NODE_EXTRA_CA_CERTS, so
// Node trusts that CA and nothing here turns verification off).
//
//   TLS_HOST=127.0.0.1 TLS_PORT=8443 NODE_EXTRA_CA_CERTS=ca.pem node --test tls.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import https from 'node:https';
import tls from 'node:tls';

const require = createRequire(import.meta.url);
const PusherClient = require('pusher-js');
const PusherServer = require('pusher');

const HOST = process.env.TLS_HOST || '127.0.0.1';
const PORT = Number(process.env.TLS_PORT || 8443);
const APP = { appId: process.env.PUSHER_APP_ID || 'app-id', key: 'app-key', secret: 'app-secret' };

const backend = new PusherServer({ ...APP, host: HOST, port: String(PORT), useTLS: true });
const clients = [];
after(() => clients.forEach((c) => c.disconnect()));

function client() {
  const c = new PusherClient(APP.key, {
    wsHost: HOST, wsPort: PORT, wssPort: PORT, forceTLS: true,
    enabledTransports: ['ws'], enableStats: false, cluster: 'mt1',
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) =>
        cb(null, backend.authorizeChannel(socketId, channelName)),
    },
  });
  clients.push(c);
  return c;
}

const within = (ms, what, p) =>
  Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error(`timeout: ${what}`)), ms))]);
const connected = (c) => within(5000, 'connected', new Promise((ok, no) => {
  if (c.connection.state === 'connected') return ok();
  c.connection.bind('connected', () => ok());
  c.connection.bind('failed', () => no(new Error('connection failed')));
}));
const subscribed = (ch) => within(5000, `subscribed ${ch.name}`, new Promise((ok, no) => {
  ch.bind('pusher:subscription_succeeded', () => ok());
  ch.bind('pusher:subscription_error', (e) => no(new Error(JSON.stringify(e))));
}));
const nextEvent = (ch, name) => within(5000, `event ${name}`, new Promise((ok) => ch.bind(name, ok)));

test('pusher-js with forceTLS connects over wss', async () => {
  const c = client();
  await connected(c);
  assert.match(c.connection.socket_id, /^\d+\.\d+$/);
  // The port speaks only TLS (plain HTTP gets a 400), so being connected proves wss.
  assert.equal(c.connection.state, 'connected');
});

test('public and private channels over wss, triggered by the SDK over https', async () => {
  const a = client();
  const b = client();
  await Promise.all([connected(a), connected(b)]);
  const pub = a.subscribe('news');
  const priv = b.subscribe('private-desk');
  await Promise.all([subscribed(pub), subscribed(priv)]);
  const got = Promise.all([nextEvent(pub, 'flash'), nextEvent(priv, 'memo')]);
  const r1 = await backend.trigger('news', 'flash', { n: 1 });
  const r2 = await backend.trigger('private-desk', 'memo', 'x'.repeat(9000));
  assert.equal(r1.status, 200);
  assert.equal(r2.status, 200);
  const [e1, e2] = await got;
  assert.deepEqual(e1, { n: 1 });
  assert.equal(e2.length, 9000);
});

test('TLS 1.2 and 1.3 both negotiate http/1.1', async () => {
  for (const v of ['TLSv1.2', 'TLSv1.3']) {
    const info = await within(5000, v, new Promise((ok, no) => {
      const s = tls.connect({ host: HOST, port: PORT, minVersion: v, maxVersion: v,
        ALPNProtocols: ['h2', 'http/1.1'] }, () => {
        ok({ version: s.getProtocol(), alpn: s.alpnProtocol, authorized: s.authorized });
        s.end();
      });
      s.on('error', no);
    }));
    assert.deepEqual(info, { version: v, alpn: 'http/1.1', authorized: true });
  }
});

test('an https GET is answered', async () => {
  const status = await within(5000, 'https GET', new Promise((ok, no) => {
    https.get({ host: HOST, port: PORT, path: '/app/nope' }, (res) => { res.resume(); ok(res.statusCode); })
      .on('error', no);
  }));
  assert.ok(status >= 200 && status < 500, `status ${status}`);
});
