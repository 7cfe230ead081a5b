// pusher-js 8 `signin()` and the npm `pusher` SDK 5 against a running Herald: user
// authentication (userAuthentication.customHandler signed by the SDK's authenticateUser),
// sendToUser through the automatic #server-to-user-<id> subscription, terminateUserConnections
// (4009, no reconnect), watchlist online/offline events (pusher.user.watchlist), a refused
// sign-in; and, against a second Herald with a 1 s activity timeout (PUSHER_SHORT_PORT), that
// pusher-js answers the server's pings and stays, and that a client that stops answering is
// closed with 4201 and reconnects at once (the 4200-range "retry" action).
//
//   PUSHER_HOST=127.0.0.1 PUSHER_PORT=6001 PUSHER_SHORT_PORT=6002 node --test users.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const PusherClient = require('pusher-js');
const PusherServer = require('pusher');

const HOST = process.env.PUSHER_HOST || '127.0.0.1';
const PORT = Number(process.env.PUSHER_PORT || 6001);
const SHORT_PORT = Number(process.env.PUSHER_SHORT_PORT || 0);
const APP = { appId: 'app-id', key: 'app-key', secret: 'app-secret' };

const backend = new PusherServer({ ...APP, host: HOST, port: String(PORT), useTLS: false });
const clients = [];
after(() => clients.forEach((c) => c.disconnect()));

// A client that signs in as `user` (an object with `id`, maybe `watchlist`) when asked to.
function client(user, { port = PORT, auth } = {}) {
  const c = new PusherClient(APP.key, {
    wsHost: HOST, wsPort: port, wssPort: port, forceTLS: false,
    enabledTransports: ['ws'], enableStats: false, cluster: 'mt1',
    userAuthentication: {
      customHandler: ({ socketId }, cb) =>
        cb(null, auth ? auth(socketId) : backend.authenticateUser(socketId, user)),
    },
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
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// Sign in and wait until the automatic #server-to-user-<id> subscription succeeded.
async function signedIn(c) {
  c.signin();
  await within(5000, 'signin', c.user.signinDonePromise);
  assert.ok(c.user.user_data, 'signed in');
  const ch = c.user.serverToUserChannel;
  assert.equal(ch.name, `#server-to-user-${c.user.user_data.id}`);
  await within(5000, 'server-to-user subscribed', new Promise((ok, no) => {
    if (ch.subscribed) return ok();
    ch.bind('pusher:subscription_succeeded', () => ok());
    ch.bind('pusher:subscription_error', (e) => no(new Error(JSON.stringify(e))));
  }));
}

const errors = (c) => {
  const seen = [];
  c.connection.bind('error', (e) => seen.push(e));
  return seen;
};
const stateIs = (c, want) => within(5000, `state ${want}`, new Promise((ok) => {
  if (c.connection.state === want) return ok();
  c.connection.bind('state_change', ({ current }) => { if (current === want) ok(); });
}));

test('signin, then sendToUser reaches every connection of the user and no one else', async () => {
  const a = client({ id: 'js-u1', user_info: { name: 'One' } });
  const b = client({ id: 'js-u1' });
  const other = client({ id: 'js-u2' });
  await Promise.all([a, b, other].map(connected));
  await Promise.all([a, b, other].map(signedIn));
  assert.deepEqual(a.user.user_data, { id: 'js-u1', user_info: { name: 'One' } });
  let otherGot = 0;
  other.user.bind('note', () => { otherGot += 1; });
  const got = Promise.all([a, b].map((c) =>
    within(5000, 'note', new Promise((ok) => c.user.bind('note', ok)))));
  const r = await backend.sendToUser('js-u1', 'note', { hello: 'user' });
  assert.equal(r.status, 200);
  assert.deepEqual(await got, [{ hello: 'user' }, { hello: 'user' }]);
  await sleep(300);
  assert.equal(otherGot, 0, 'another user got the event');
});

test('terminateUserConnections closes the user\'s connections with 4009, no reconnect', async () => {
  const a = client({ id: 'js-t' });
  const b = client({ id: 'js-t' });
  const keep = client({ id: 'js-keep' });
  await Promise.all([a, b, keep].map(connected));
  await Promise.all([a, b, keep].map(signedIn));
  const errs = [errors(a), errors(b)];
  const states = [];
  a.connection.bind('state_change', ({ current }) => states.push(current));
  const r = await backend.terminateUserConnections('js-t');
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {});
  await Promise.all([a, b].map((c) => stateIs(c, 'disconnected')));
  for (const seen of errs) {
    const codes = seen.map((e) => e.data && e.data.code);
    assert.ok(codes.includes(4009), JSON.stringify(seen));
    assert.ok(seen.some((e) => e.data.message === 'You got disconnected by the app.'));
  }
  await sleep(1500);
  assert.ok(!states.includes('connected'), `4009 is "refused": ${states.join(' ')}`);
  assert.equal(keep.connection.state, 'connected');
  const got = within(5000, 'kept user', new Promise((ok) => keep.user.bind('still', ok)));
  await backend.sendToUser('js-keep', 'still', 'here');
  assert.equal(await got, 'here');
});

test('watchlist: online at signin for users already online, then online and offline', async () => {
  const early = client({ id: 'js-w-early' });
  await connected(early);
  await signedIn(early);
  const w = client({ id: 'js-watcher', watchlist: ['js-w-early', 'js-w-late'] });
  const events = [];
  const seen = (name, id) => within(5000, `${name} ${id}`, new Promise((ok) => {
    const check = () => events.some((e) => e.name === name && e.user_ids.includes(id));
    if (check()) return ok();
    w.user.watchlist.bind(name, () => { if (check()) ok(); });
  }));
  w.user.watchlist.bind('online', (e) => events.push(e));
  w.user.watchlist.bind('offline', (e) => events.push(e));
  await connected(w);
  await signedIn(w);
  await seen('online', 'js-w-early');
  assert.deepEqual(events[0], { name: 'online', user_ids: ['js-w-early'] });
  const late = client({ id: 'js-w-late' });
  await connected(late);
  await signedIn(late);
  await seen('online', 'js-w-late');
  late.disconnect();
  await seen('offline', 'js-w-late');
  early.disconnect();
  await seen('offline', 'js-w-early');
  assert.deepEqual(events.map((e) => `${e.name}:${e.user_ids.join(',')}`), [
    'online:js-w-early', 'online:js-w-late', 'offline:js-w-late', 'offline:js-w-early',
  ]);
});

test('a sign-in with a wrong signature is refused with 4009 and not retried', async () => {
  const c = client({ id: 'js-bad' }, { auth: () => ({ auth: 'app-key:00', user_data: '{"id":"js-bad"}' }) });
  await connected(c);
  const seen = errors(c);
  const states = [];
  c.connection.bind('state_change', ({ current }) => states.push(current));
  c.signin();
  await stateIs(c, 'disconnected');
  assert.ok(seen.some((e) => e.data && e.data.code === 4009), JSON.stringify(seen));
  assert.equal(c.user.user_data, null);
  await sleep(1000);
  assert.ok(!states.includes('connected'), states.join(' '));
});

const short = { skip: SHORT_PORT ? false : 'PUSHER_SHORT_PORT not set (run.sh starts that Herald)' };

test('pusher-js answers the server\'s pings and stays connected (1 s activity timeout)', short, async () => {
  const c = client({ id: 'js-idle' }, { port: SHORT_PORT });
  const pings = [];
  c.connection.bind('message', (m) => { if (m.event === 'pusher:ping') pings.push(m); });
  await connected(c);
  const id = c.connection.socket_id;
  const states = [];
  c.connection.bind('state_change', ({ current }) => states.push(current));
  // Drop pusher-js's own pings, so only its answers (pusher:pong) keep the socket alive.
  const transport = c.connection.connection.transport;
  const send = transport.send.bind(transport);
  transport.send = (data) => (String(data).includes('"pusher:ping"') ? true : send(data));
  transport.ping = () => {};
  await sleep(4500);
  assert.ok(pings.length >= 2, `server pings seen: ${pings.length}`);
  assert.equal(c.connection.state, 'connected');
  assert.equal(c.connection.socket_id, id, `same socket: ${states.join(' ')}`);
  assert.deepEqual(states, []);
});

test('a client that stops answering is closed with 4201 and reconnects at once', short, async () => {
  const c = client({ id: 'js-mute' }, { port: SHORT_PORT });
  await connected(c);
  const first = c.connection.socket_id;
  const seen = errors(c);
  const states = [];
  c.connection.bind('state_change', ({ current }) => states.push(current));
  // Drop everything this socket would send (its pongs and pings): the server hears silence.
  const transport = c.connection.connection.transport;
  transport.send = () => true;
  transport.ping = () => {};
  await within(8000, 'closed and reconnected', new Promise((ok) => {
    c.connection.bind('connected', () => ok());
  }));
  assert.ok(seen.some((e) => e.data && e.data.code === 4201), JSON.stringify(seen));
  assert.ok(seen.some((e) => e.data.message === 'Pong reply not received in time'));
  assert.notEqual(c.connection.socket_id, first);
  assert.ok(!states.includes('unavailable'), `4201 is "retry": ${states.join(' ')}`);
});
