// Herald's webhooks checked by the npm `pusher` SDK 5: a receiver in this test (node:http on
// PUSHER_WEBHOOK_PORT) gets what a Herald started with HERALD_DEFAULT_APP_WEBHOOKS pointing at
// it sends (run.sh starts that Herald on PUSHER_WEBHOOK_HERALD_PORT, batching on, a 200 ms
// grace delay); `pusher.webhook({headers, rawBody}).isValid()` must accept every request and
// `getEvents()` return the events pusher-js clients caused.
//
//   PUSHER_HOST=127.0.0.1 PUSHER_WEBHOOK_HERALD_PORT=… PUSHER_WEBHOOK_PORT=… node --test webhooks.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const PusherClient = require('pusher-js');
const PusherServer = require('pusher');

const HOST = process.env.PUSHER_HOST || '127.0.0.1';
const PORT = Number(process.env.PUSHER_WEBHOOK_HERALD_PORT || 6002);
const HOOK_PORT = Number(process.env.PUSHER_WEBHOOK_PORT || 6003);
const APP = { appId: 'app-id', key: 'app-key', secret: 'app-secret' };
const backend = new PusherServer({ ...APP, host: HOST, port: String(PORT), useTLS: false });

// Every request the receiver got: the SDK's verdict and its events.
const received = [];
const waiters = [];
const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const hook = backend.webhook({ headers: req.headers, rawBody });
    const valid = hook.isValid();
    received.push({ valid, events: valid ? hook.getEvents() : [], time: valid ? hook.getTime() : null,
      headers: req.headers, rawBody });
    res.writeHead(200).end();
    waiters.splice(0).forEach((w) => w());
  });
});
await new Promise((ok) => receiver.listen(HOOK_PORT, '127.0.0.1', ok));

const clients = [];
after(() => { clients.forEach((c) => c.disconnect()); receiver.close(); });

function client(user) {
  const c = new PusherClient(APP.key, {
    wsHost: HOST, wsPort: PORT, wssPort: PORT, forceTLS: false,
    enabledTransports: ['ws'], enableStats: false, cluster: 'mt1',
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => cb(null, channelName.startsWith('presence-')
        ? backend.authorizeChannel(socketId, channelName, user)
        : backend.authorizeChannel(socketId, channelName)),
    },
  });
  clients.push(c);
  return c;
}

const within = (ms, what, p) =>
  Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error(`timeout: ${what}`)), ms))]);
const subscribed = (ch) => within(5000, `subscribed ${ch.name}`, new Promise((ok, no) => {
  ch.bind('pusher:subscription_succeeded', () => ok());
  ch.bind('pusher:subscription_error', (e) => no(new Error(JSON.stringify(e))));
}));
const events = () => received.flatMap((r) => r.events);
// Resolves once an event matching `pred` was received (each request wakes the waiters).
const hookEvent = (what, pred) => within(5000, `webhook ${what}`, new Promise((ok) => {
  const check = () => {
    const e = events().find(pred);
    if (e) ok(e); else waiters.push(check);
  };
  check();
}));

test('the SDK validates every webhook and reads its events', async () => {
  const ann = client({ user_id: 'ann', user_info: { name: 'Ann' } });
  const bob = client({ user_id: 'bob' });
  const p = 'presence-hooks';
  const ca = ann.subscribe(p);
  await subscribed(ca);
  const cb = bob.subscribe(p);
  await subscribed(cb);
  const got = new Promise((ok) => cb.bind('client-wave', ok));
  ca.trigger('client-wave', { hello: 1 });
  assert.deepEqual(await within(5000, 'client event', got), { hello: 1 });
  const cache = bob.subscribe('cache-hooks');
  await subscribed(cache);

  assert.deepEqual(await hookEvent('occupied', (e) => e.name === 'channel_occupied' && e.channel === p),
    { name: 'channel_occupied', channel: p });
  await hookEvent('ann added', (e) => e.name === 'member_added' && e.user_id === 'ann');
  await hookEvent('bob added', (e) => e.name === 'member_added' && e.user_id === 'bob');
  const ce = await hookEvent('client_event', (e) => e.name === 'client_event');
  assert.equal(ce.channel, p);
  assert.equal(ce.event, 'client-wave');
  assert.deepEqual(JSON.parse(ce.data), { hello: 1 });
  assert.equal(ce.socket_id, ann.connection.socket_id);
  assert.equal(ce.user_id, 'ann');
  await hookEvent('cache_miss', (e) => e.name === 'cache_miss' && e.channel === 'cache-hooks');

  // Leaving: member_removed and, once the channel is empty, channel_vacated (after the delay).
  ann.unsubscribe(p);
  await hookEvent('ann removed', (e) => e.name === 'member_removed' && e.user_id === 'ann');
  bob.disconnect();
  await hookEvent('vacated', (e) => e.name === 'channel_vacated' && e.channel === p);
  await hookEvent('cache vacated', (e) => e.name === 'channel_vacated' && e.channel === 'cache-hooks');

  assert.ok(received.length > 0);
  for (const r of received) {
    assert.equal(r.valid, true, `isValid() for ${r.rawBody}`);
    assert.ok(Math.abs(r.time.getTime() - Date.now()) < 60000, 'getTime() is now');
  }
  // Batching is on in run.sh: fewer requests than events.
  assert.ok(received.length < events().length, `${received.length} requests, ${events().length} events`);
  // The check can fail: a changed body or another secret is refused.
  const r = received[0];
  assert.equal(backend.webhook({ headers: r.headers, rawBody: r.rawBody.replace('}', ' }') }).isValid(), false);
  const other = new PusherServer({ ...APP, secret: 'not-the-secret', host: HOST, port: String(PORT) });
  assert.equal(other.webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), false);
});
