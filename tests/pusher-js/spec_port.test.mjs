// Scenarios of pusher-js's own integration specs (spec/javascripts/integration/core/pusher_spec,
// test_builder.js) that exercise a server, rewritten against a running Herald with pusher-js 8
// (Node, ws transport) and the npm `pusher` SDK: connection states, reconnection after a server
// close, subscribe twice, unsubscribe, pending subscriptions cancelled and reinstated, many
// channels on one connection, payloads at the size limit, private-encrypted channels.
//
// Server-side delivery is observed on the connection's raw 'message' stream, not through
// channel callbacks: pusher-js drops events of channels it no longer holds, which would hide a
// server that still sends them.
//
//   PUSHER_HOST=127.0.0.1 PUSHER_PORT=6001 node --test spec_port.test.mjs   (run.sh starts Herald)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const PusherClient = require('pusher-js');
const PusherServer = require('pusher');

const HOST = process.env.PUSHER_HOST || '127.0.0.1';
const PORT = Number(process.env.PUSHER_PORT || 6001);
const APP = { appId: 'app-id', key: 'app-key', secret: 'app-secret' };
/// Herald's HTTP API limit on `data` (Pusher's 10 KB).
const MAX_DATA = 10 * 1024;

const backend = new PusherServer({ ...APP, host: HOST, port: String(PORT), useTLS: false });
const clients = [];
after(() => clients.forEach((c) => c.disconnect()));

function client(extra = {}, key = APP.key) {
  const c = new PusherClient(key, {
    wsHost: HOST, wsPort: PORT, wssPort: PORT, forceTLS: false,
    enabledTransports: ['ws'], enableStats: false, cluster: 'mt1',
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) =>
        cb(null, backend.authorizeChannel(socketId, channelName)),
    },
    ...extra,
  });
  clients.push(c);
  return c;
}

const within = (ms, what, p) =>
  Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error(`timeout: ${what}`)), ms))]);
const stateIs = (c, want, ms = 5000) => within(ms, `state ${want}`, new Promise((ok) => {
  if (c.connection.state === want) return ok();
  const f = ({ current }) => { if (current === want) { c.connection.unbind('state_change', f); ok(); } };
  c.connection.bind('state_change', f);
}));
const connected = (c) => stateIs(c, 'connected');
const subscribed = (ch) => within(5000, `subscribed ${ch.name}`,
  new Promise((ok, no) => {
    if (ch.subscribed) return ok();
    ch.bind('pusher:subscription_succeeded', () => ok());
    ch.bind('pusher:subscription_error', (e) => no(new Error(JSON.stringify(e))));
  }));

/// Every frame the server sends this client, as parsed by pusher-js.
function wire(c) {
  const seen = [];
  const waiters = [];
  c.connection.bind('message', (m) => {
    seen.push(m);
    for (const w of [...waiters]) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.ok(m); }
  });
  return {
    seen,
    count: (pred) => seen.filter(pred).length,
    next: (what, pred) => within(5000, what, new Promise((ok) => {
      const w = { pred, ok };
      waiters.push(w);
    })),
  };
}
const is = (event, channel) => (m) => m.event === event && (channel === undefined || m.channel === channel);

/// A protocol ping round trip: frames this client sent before it have been read by the server.
async function roundTrip(c, w) {
  const pong = w.next('pusher:pong', is('pusher:pong'));
  c.connection.send_event('pusher:ping', {});
  await pong;
}

/// Trigger `event` on `channels`, then a marker on `markerChannel`, and wait for the marker: any
/// delivery of `event` to this client has arrived by then (one owner per channel, in order, and
/// the marker goes out after the first trigger has been answered).
async function triggerThenMark(w, channels, event, data, markerChannel) {
  const r = await backend.trigger(channels, event, data);
  assert.equal(r.status, 200);
  const mark = w.next(`marker on ${markerChannel}`, is('marker', markerChannel));
  await backend.trigger(markerChannel, 'marker', 'm');
  await mark;
}

test('connection states: connecting, connected, then disconnected', async () => {
  const c = client();
  // The constructor already left 'initialized' for 'connecting' (synchronously).
  const states = [c.connection.state];
  c.connection.bind('state_change', ({ current }) => states.push(current));
  await connected(c);
  assert.ok(c.connection.socket_id);
  c.disconnect();
  await stateIs(c, 'disconnected');
  assert.deepEqual(states, ['connecting', 'connected', 'disconnected']);
});

test('an unknown app key is refused (4001) and pusher-js does not keep retrying', async () => {
  const c = client({}, 'no-such-key');
  const states = [];
  const errors = [];
  c.connection.bind('state_change', ({ current }) => states.push(current));
  c.connection.bind('error', (e) => errors.push(e));
  await within(5000, 'refusal', new Promise((ok) => {
    const f = () => { if (['disconnected', 'failed'].includes(c.connection.state)) ok(); };
    c.connection.bind('state_change', f);
  }));
  const code = errors.map((e) => e?.data?.code ?? e?.error?.data?.code).find((x) => x);
  assert.equal(code, 4001, JSON.stringify(errors));
  // 4000-4099 means "do not reconnect unchanged": no new attempt follows the refusal.
  const settled = states.length;
  await new Promise((ok) => setTimeout(ok, 1500));
  assert.ok(!states.includes('connected'), states.join(' '));
  assert.deepEqual(states.slice(settled), [], states.join(' '));
});

test('reconnect after the server closes the socket (message too big): new socket id, '
  + 'channels resubscribed, events flow again', async () => {
  const c = client();
  await connected(c);
  const ch = c.subscribe('spec-reconnect');
  await subscribed(ch);
  const first = c.connection.socket_id;
  const states = [];
  c.connection.bind('state_change', ({ current }) => states.push(current));
  const resubscribed = within(10000, 'resubscribed', new Promise((ok) =>
    ch.bind('pusher:subscription_succeeded', () => ok())));
  // Larger than Herald's websocket message limit (1 MiB by default): the server closes.
  c.send_event('big', 'x'.repeat(1024 * 1024 + 1));
  await within(10000, 'reconnected', new Promise((ok) => {
    const f = ({ current }) => { if (current === 'connected') ok(); };
    c.connection.bind('state_change', f);
  }));
  await resubscribed;
  assert.notEqual(c.connection.socket_id, first);
  assert.ok(states.includes('connecting'), states.join(' '));
  const got = within(5000, 'event after reconnect', new Promise((ok) => ch.bind('after', ok)));
  await backend.trigger('spec-reconnect', 'after', { ok: true });
  assert.deepEqual(await got, { ok: true });
});

// Close codes 4200-4299 (reconnect at once): users.test.mjs, a client that stops answering the
// server's pings is closed with 4201 and reconnects; browser.test.mjs, Herald's 4200 at shutdown.

test('subscribing twice: one subscription, each event delivered once', async () => {
  const c = client();
  const w = wire(c);
  await connected(c);
  const a = c.subscribe('spec-twice');
  const b = c.subscribe('spec-twice');
  assert.equal(a, b, 'pusher-js hands back the same channel');
  await subscribed(a);
  // pusher-js deduplicates client-side; send a second subscribe on the wire too.
  const again = w.next('second subscription_succeeded',
    is('pusher_internal:subscription_succeeded', 'spec-twice'));
  c.connection.send_event('pusher:subscribe', { channel: 'spec-twice' });
  await again;
  await triggerThenMark(w, 'spec-twice', 'once', 1, 'spec-twice');
  assert.equal(w.count(is('once', 'spec-twice')), 1);
});

test('unsubscribe, then publish: not delivered; other channels still are', async () => {
  const c = client();
  const w = wire(c);
  await connected(c);
  const [gone, kept] = [c.subscribe('spec-gone'), c.subscribe('spec-kept')];
  await Promise.all([subscribed(gone), subscribed(kept)]);
  c.unsubscribe('spec-gone');
  await roundTrip(c, w);
  await triggerThenMark(w, ['spec-gone', 'spec-kept'], 'late', 'x', 'spec-kept');
  assert.equal(w.count(is('late', 'spec-kept')), 1);
  assert.equal(w.count(is('late', 'spec-gone')), 0, 'the server still sent to an unsubscribed socket');
});

test('unsubscribing twice is harmless', async () => {
  const c = client();
  const w = wire(c);
  await connected(c);
  await subscribed(c.subscribe('spec-idem'));
  c.unsubscribe('spec-idem');
  c.connection.send_event('pusher:unsubscribe', { channel: 'spec-idem' });
  c.connection.send_event('pusher:unsubscribe', { channel: 'spec-never' });
  await roundTrip(c, w);
  assert.equal(c.connection.state, 'connected');
  assert.equal(w.count(is('pusher:error')), 0, JSON.stringify(w.seen));
});

test('a pending subscription cancelled and reinstated ends subscribed', async () => {
  const c = client();
  const w = wire(c);
  await connected(c);
  c.subscribe('spec-pending');
  c.unsubscribe('spec-pending');
  const ch = c.subscribe('spec-pending');
  await subscribed(ch);
  await roundTrip(c, w);
  const got = within(5000, 'event', new Promise((ok) => ch.bind('ev', ok)));
  await triggerThenMark(w, 'spec-pending', 'ev', 'y', 'spec-pending');
  assert.equal(await got, 'y');
  assert.equal(w.count(is('ev', 'spec-pending')), 1);
});

test('a pending subscription cancelled (subscribe + unsubscribe) gets no events', async () => {
  const c = client();
  const w = wire(c);
  await connected(c);
  c.subscribe('spec-cancelled');
  c.unsubscribe('spec-cancelled');
  await subscribed(c.subscribe('spec-cancel-marker'));
  await roundTrip(c, w);
  await triggerThenMark(w, 'spec-cancelled', 'ev', 'z', 'spec-cancel-marker');
  assert.equal(w.count(is('ev', 'spec-cancelled')), 0);
});

test('many channels on one connection (250, public and private)', async () => {
  const c = client();
  const w = wire(c);
  await connected(c);
  const names = Array.from({ length: 250 }, (_, i) => (i % 5 === 0 ? `private-spec-m${i}` : `spec-m${i}`));
  await Promise.all(names.map((n) => subscribed(c.subscribe(n))));
  for (let i = 0; i < names.length; i += 100) {
    const r = await backend.trigger(names.slice(i, i + 100), 'fan', { i });
    assert.equal(r.status, 200);
  }
  await within(5000, 'all 250 deliveries', new Promise((ok) => {
    const check = () => { if (w.count(is('fan')) >= names.length) ok(); };
    c.connection.bind('message', check);
    check();
  }));
  assert.deepEqual(new Set(w.seen.filter(is('fan')).map((m) => m.channel)), new Set(names));
});

test('payload at the 10 KB limit is delivered intact; one byte over is refused (413)', async () => {
  const c = client();
  await connected(c);
  const ch = c.subscribe('spec-big');
  await subscribed(ch);
  const data = 'y'.repeat(MAX_DATA);
  const got = within(5000, 'big event', new Promise((ok) => ch.bind('big', ok)));
  await backend.trigger('spec-big', 'big', data);
  assert.equal(await got, data);
  await assert.rejects(backend.trigger('spec-big', 'big', data + 'y'), (e) => e.status === 413);
});

// Presence (member data, count, member_added / member_removed) and client events are ported
// in pusher.test.mjs, next to the SDK's authorizeChannel they need.

// User sign-in, #server-to-user channels, terminate and watchlists: users.test.mjs.

// private-encrypted-: the server treats it as a private channel and relays the ciphertext; the
// SDK encrypts with a per-channel secret derived from the master key, which it also hands to the
// client in the channel authorization (pusher-js's Node build includes tweetnacl).
test('private-encrypted channels: SDK-encrypted events decrypt in pusher-js; the server sees only ciphertext', async () => {
  const masterKey = Buffer.alloc(32, 7).toString('base64');
  const crypt = new PusherServer({ ...APP, host: HOST, port: String(PORT), useTLS: false,
    encryptionMasterKeyBase64: masterKey });
  const c = client({
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => cb(null, crypt.authorizeChannel(socketId, channelName)),
    },
  });
  const w = wire(c);
  await connected(c);
  const ch = c.subscribe('private-encrypted-spec');
  await subscribed(ch);
  const got = within(5000, 'decrypted event', new Promise((ok) => ch.bind('secret', ok)));
  const raw = w.next('raw encrypted frame', is('secret', 'private-encrypted-spec'));
  const r = await crypt.trigger('private-encrypted-spec', 'secret', { msg: 'only for you' });
  assert.equal(r.status, 200);
  assert.deepEqual(await got, { msg: 'only for you' });
  const frame = await raw;
  const onWire = typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data;
  assert.ok(onWire.nonce && onWire.ciphertext, `ciphertext on the wire: ${JSON.stringify(frame)}`);
  assert.ok(!JSON.stringify(frame).includes('only for you'));
  // a forged authorization (no valid signature, no shared secret) is refused:
  const anon = client({
    channelAuthorization: { customHandler: (_p, cb) => cb(null, { auth: 'app-key:' + '0'.repeat(64) }) },
  });
  await connected(anon);
  const bad = anon.subscribe('private-encrypted-spec');
  await assert.rejects(subscribed(bad));
});
