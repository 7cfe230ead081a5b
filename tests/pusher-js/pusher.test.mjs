// pusher-js 8 (Node build, `ws` transport only) and the npm `pusher` SDK 5 against a running
// Herald: connect, public channels with an HTTP trigger and socket_id exclusion, private
// channels authorised by the SDK, refused private auth, protocol pings, presence members and
// client events; the SDK's trigger to several channels with `info`, triggerBatch, and get() on
// /channels, /channels/{name}, /users.
//
//   PUSHER_HOST=127.0.0.1 PUSHER_PORT=6001 node --test pusher.test.mjs   (run.sh starts Herald)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const PusherClient = require('pusher-js');
const PusherServer = require('pusher');

const HOST = process.env.PUSHER_HOST || '127.0.0.1';
const PORT = Number(process.env.PUSHER_PORT || 6001);
const APP = { appId: 'app-id', key: 'app-key', secret: 'app-secret' };

const backend = new PusherServer({ ...APP, host: HOST, port: String(PORT), useTLS: false });
const clients = [];
after(() => clients.forEach((c) => c.disconnect()));

function client(extra = {}) {
  const c = new PusherClient(APP.key, {
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
const connected = (c) => within(5000, 'connected', new Promise((ok) => {
  if (c.connection.state === 'connected') return ok();
  c.connection.bind('connected', () => ok());
}));
const subscribed = (ch) => within(5000, `subscribed ${ch.name}`,
  new Promise((ok, no) => {
    ch.bind('pusher:subscription_succeeded', () => ok());
    ch.bind('pusher:subscription_error', (e) => no(new Error(JSON.stringify(e))));
  }));
const nextEvent = (ch, name) => within(5000, `event ${name}`, new Promise((ok) => ch.bind(name, ok)));
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

test('pusher-js connects and gets a socket id', async () => {
  const c = client();
  await connected(c);
  assert.match(c.connection.socket_id, /^\d+\.\d+$/);
});

test('public channel: SDK trigger reaches subscribers, socket_id is excluded', async () => {
  const a = client();
  const b = client();
  await Promise.all([connected(a), connected(b)]);
  const [ca, cb] = [a.subscribe('my-channel'), b.subscribe('my-channel')];
  await Promise.all([subscribed(ca), subscribed(cb)]);
  const got = Promise.all([nextEvent(ca, 'my-event'), nextEvent(cb, 'my-event')]);
  const r = await backend.trigger('my-channel', 'my-event', { hello: 'world' });
  assert.equal(r.status, 200);
  assert.deepEqual(await got, [{ hello: 'world' }, { hello: 'world' }]);

  let aGot = 0;
  ca.bind('second', () => { aGot += 1; });
  const bGot = nextEvent(cb, 'second');
  await backend.trigger('my-channel', 'second', 'x', { socket_id: a.connection.socket_id });
  assert.equal(await bGot, 'x');
  await sleep(300);
  assert.equal(aGot, 0, 'the excluded socket got the event');
});

test('private channel: authorised by the SDK, events arrive', async () => {
  const c = client();
  await connected(c);
  const ch = c.subscribe('private-room');
  await subscribed(ch);
  const got = nextEvent(ch, 'secret');
  await backend.trigger(['private-room', 'other'], 'secret', { n: 1 });
  assert.deepEqual(await got, { n: 1 });
});

test('private channel: a wrong signature is refused', async () => {
  const c = client({
    channelAuthorization: { customHandler: (_p, cb) => cb(null, { auth: 'app-key:00' }) },
  });
  await connected(c);
  const ch = c.subscribe('private-nope');
  const err = await within(5000, 'subscription_error',
    new Promise((ok) => ch.bind('pusher:subscription_error', ok)));
  assert.equal(err.status, 401);
});

test('protocol pings keep the connection', async () => {
  const c = client({ activityTimeout: 500, pongTimeout: 1000 });
  await connected(c);
  const id = c.connection.socket_id;
  await sleep(2500);
  assert.equal(c.connection.state, 'connected');
  assert.equal(c.connection.socket_id, id);
});

// A client whose channel authorisation signs presence as `user` (the SDK's authorizeChannel;
// given presence data it signs `socket_id:channel:channel_data`, so only for presence-).
const member = (user) => client({
  channelAuthorization: {
    customHandler: ({ socketId, channelName }, cb) => cb(null, channelName.startsWith('presence-')
      ? backend.authorizeChannel(socketId, channelName, user)
      : backend.authorizeChannel(socketId, channelName)),
  },
});
const until = (ms, what, f) => within(ms, what, new Promise((ok) => {
  const t = setInterval(() => { if (f()) { clearInterval(t); ok(); } }, 20);
}));

test('presence channel: members, member_added once per user, member_removed on the last', async () => {
  const ann = { user_id: 'ann', user_info: { name: 'Ann' } };
  const [ann1, bob] = [member(ann), member({ user_id: 7, user_info: { name: 'Bob' } })];
  await Promise.all([connected(ann1), connected(bob)]);
  const ca = ann1.subscribe('presence-js');
  await subscribed(ca);
  assert.equal(ca.members.count, 1);
  assert.deepEqual(ca.members.me, { id: 'ann', info: { name: 'Ann' } });
  const added = nextEvent(ca, 'pusher:member_added');
  const cb = bob.subscribe('presence-js');
  await subscribed(cb);
  assert.equal(cb.members.count, 2);
  assert.deepEqual(cb.members.get('ann'), { id: 'ann', info: { name: 'Ann' } });
  assert.deepEqual(await added, { id: '7', info: { name: 'Bob' } });

  const seen = { added: 0, removed: [] };
  cb.bind('pusher:member_added', () => { seen.added += 1; });
  cb.bind('pusher:member_removed', (m) => seen.removed.push(m.id));
  const ann2 = member(ann);
  await connected(ann2);
  const c2 = ann2.subscribe('presence-js');
  await subscribed(c2);
  assert.equal(c2.members.count, 2);
  ann1.disconnect();
  await sleep(300);
  assert.deepEqual(seen.removed, [], 'ann still has a connection');
  ann2.disconnect();
  await until(5000, 'member_removed', () => seen.removed.length > 0);
  assert.deepEqual(seen.removed, ['ann']);
  assert.equal(seen.added, 0);
  assert.equal(cb.members.count, 1);
});

test('client events: to the other members, not the sender; user_id on presence', async () => {
  const [a, b] = [member({ user_id: 'a' }), member({ user_id: 'b' })];
  await Promise.all([connected(a), connected(b)]);
  for (const name of ['private-js-chat', 'presence-js-chat']) {
    const [ca, cb] = [a.subscribe(name), b.subscribe(name)];
    await Promise.all([subscribed(ca), subscribed(cb)]);
    let echoed = 0;
    ca.bind('client-typing', () => { echoed += 1; });
    const got = within(5000, `client event on ${name}`,
      new Promise((ok) => cb.bind('client-typing', (data, meta) => ok({ data, meta }))));
    assert.equal(ca.trigger('client-typing', { who: 'a' }), true);
    const { data, meta } = await got;
    assert.deepEqual(data, { who: 'a' });
    assert.equal(meta?.user_id, name.startsWith('presence-') ? 'a' : undefined);
    await sleep(200);
    assert.equal(echoed, 0, 'the sender got its own client event');
  }
});


test('SDK trigger to several channels with info counts each channel', async () => {
  const a = client();
  const b = client();
  await Promise.all([connected(a), connected(b)]);
  const chans = ['multi-1', 'multi-2', 'multi-3'];
  const subs = chans.map((n) => a.subscribe(n));
  const both = b.subscribe('multi-1');
  await Promise.all([...subs.map(subscribed), subscribed(both)]);
  const got = Promise.all([...subs.map((ch) => nextEvent(ch, 'fan')), nextEvent(both, 'fan')]);
  const r = await backend.trigger(chans, 'fan', { n: 3 }, { info: 'subscription_count' });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {
    channels: {
      'multi-1': { subscription_count: 2 },
      'multi-2': { subscription_count: 1 },
      'multi-3': { subscription_count: 1 },
    },
  });
  assert.deepEqual(await got, [{ n: 3 }, { n: 3 }, { n: 3 }, { n: 3 }]);
});

test('SDK triggerBatch delivers each event to its channel', async () => {
  const c = client();
  await connected(c);
  const [x, y] = [c.subscribe('batch-x'), c.subscribe('batch-y')];
  await Promise.all([subscribed(x), subscribed(y)]);
  const got = Promise.all([nextEvent(x, 'bx'), nextEvent(y, 'by')]);
  const r = await backend.triggerBatch([
    { channel: 'batch-x', name: 'bx', data: { x: 1 } },
    { channel: 'batch-y', name: 'by', data: 'plain' },
  ]);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {});
  assert.deepEqual(await got, [{ x: 1 }, 'plain']);
});

test('SDK get: /channels, /channels/{name}, users of a presence channel', async () => {
  const c = client();
  await connected(c);
  const ch = c.subscribe('listed-channel');
  await subscribed(ch);
  let r = await backend.get({ path: '/channels', params: { filter_by_prefix: 'listed-' } });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { channels: { 'listed-channel': {} } });
  r = await backend.get({ path: '/channels/listed-channel', params: { info: 'subscription_count' } });
  assert.deepEqual(await r.json(), { occupied: true, subscription_count: 1 });
  r = await backend.get({ path: '/channels/presence-nobody/users' });
  assert.deepEqual(await r.json(), { users: [] });
  await assert.rejects(backend.get({ path: '/channels', params: { info: 'user_count' } }),
    (e) => e.status === 400);
});

test('cache channel: pusher:cache_miss when empty, then the last event replayed on subscribe', async () => {
  const a = client();
  await connected(a);
  const ca = a.subscribe('cache-js-weather');
  const miss = nextEvent(ca, 'pusher:cache_miss');
  await subscribed(ca);
  await miss;
  await backend.trigger('cache-js-weather', 'forecast', { t: 1 });
  await backend.trigger('cache-js-weather', 'forecast', { t: 2 });
  // a ping round trip is not needed: a later subscriber asks the owner after both publishes
  const b = client();
  await connected(b);
  const cb = b.subscribe('cache-js-weather');
  let missed = false;
  cb.bind('pusher:cache_miss', () => { missed = true; });
  const replay = nextEvent(cb, 'forecast');
  await subscribed(cb);
  assert.deepEqual(await replay, { t: 2 }, 'only the last event is replayed');
  assert.equal(missed, false);
  const info = await (await backend.get({ path: '/channels/cache-js-weather', params: { info: 'cache' } })).json();
  assert.equal(info.occupied, true, JSON.stringify(info));
  assert.ok(info.cache && JSON.parse(info.cache.data).t === 2, JSON.stringify(info));
});
