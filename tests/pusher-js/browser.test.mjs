// pusher-js 8.6's web build (dist/web/pusher.min.js, unchanged) in Debian's headless Chromium
// against Herald's Pusher dialect: public subscribe + HTTP trigger, private channels authorised
// by a cross-origin Node endpoint (CORS) signing with the npm `pusher` SDK's authorizeChannel, a
// refused private auth, presence with two browsers (member_added / member_removed), client
// events between them (with the sender's user_id, not echoed), and reconnection after Herald
// closes the sockets with 4200 at shutdown (a rolling restart: a second Herald takes the port by
// SO_REUSEPORT first), and user sign-in through the endpoint's authenticateUser, then sendToUser.
//
// This file starts Herald itself (it must stop and replace it), from run.sh's environment:
//   HERALD=target/release/herald HERALD_INI=logs/browser.ini node --test browser.test.mjs
// The ini names the app ([pusher_app:browser], client events on). CHROMIUM: default
// /usr/bin/chromium. Screenshots and Herald's logs go to logs/ (git-ignored).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const PusherServer = require('pusher');
const here = path.dirname(fileURLToPath(import.meta.url));
const LOGS = path.join(here, 'logs');
const HERALD = process.env.HERALD || path.join(here, '../../target/release/herald');
const INI = process.env.HERALD_INI || path.join(LOGS, 'browser.ini');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Must match the [pusher_app:browser] section run.sh writes.
const APP = { appId: '4242', key: 'browser-key', secret: 'browser-secret' };
const RUN = randomBytes(3).toString('hex');
const WAIT = 10000;

let port;
let backend;
let herald; // the Herald process serving now
let restarts = 0;
let pageServer;
let authServer;
let pageUrl;
let authUrl;
let browser;
const pages = {}; // user -> page, each in its own browser context
const authSeen = []; // {path, origin, channel, user}

/** Start Herald on `port`; resolves once it logs that it serves (its listeners are bound). */
async function startHerald(n) {
  const log = createWriteStream(path.join(LOGS, `browser-herald-${n}.log`));
  const proc = spawn(HERALD, ['-i', INI, '--host', '127.0.0.1', '--port', String(port),
    '--shards', '2', '--log-level', 'INFO'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'true' },
  });
  let buf = '';
  await new Promise((ok, no) => {
    const timer = setTimeout(() => no(new Error(`herald ${n} did not start: ${buf}`)), WAIT);
    proc.on('exit', (code) => no(new Error(`herald ${n} exited with ${code}: ${buf}`)));
    proc.stderr.on('data', (chunk) => {
      log.write(chunk);
      buf += chunk;
      if (buf.includes('serving on')) {
        clearTimeout(timer);
        ok();
      }
    });
  });
  proc.removeAllListeners('exit');
  return proc;
}

async function stopHerald(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const [code] = await exited;
  return code;
}

/** The auth endpoint a site would run: another origin than the page, so CORS applies. */
function authHandler(req, res) {
  const origin = req.headers.origin || '';
  const cors = {
    'Access-Control-Allow-Origin': origin || '*',
    'Access-Control-Allow-Methods': 'POST, OPTIONS',
    'Access-Control-Allow-Headers': 'Content-Type',
    Vary: 'Origin',
  };
  if (req.method === 'OPTIONS') {
    res.writeHead(204, cors);
    res.end();
    return;
  }
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    const q = new URLSearchParams(body);
    const socketId = q.get('socket_id');
    const channel = q.get('channel_name');
    const user = q.get('user');
    authSeen.push({ path: req.url, origin, channel, user });
    const reply = (status, v) => {
      res.writeHead(status, { ...cors, 'Content-Type': 'application/json' });
      res.end(JSON.stringify(v));
    };
    if (req.url === '/pusher/auth' && channel && !channel.includes('denied')) {
      const presence = channel.startsWith('presence-')
        ? { user_id: user, user_info: { name: user.toUpperCase() } } : undefined;
      return reply(200, backend.authorizeChannel(socketId, channel, presence));
    }
    if (req.url === '/pusher/user-auth') {
      return reply(200, backend.authenticateUser(socketId, { id: user, name: user }));
    }
    return reply(403, { error: 'forbidden' });
  });
}

async function listen(server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${server.address().port}`;
}

/** A page in a fresh browser context (its own cookies, its own socket), connected as `user`. */
async function openBrowser(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => consoleLog.write(`[${user}] ${m.type()}: ${m.text()}\n`));
  page.on('pageerror', (e) => consoleLog.write(`[${user}] pageerror: ${e.message}\n`));
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.ready === true, null, { timeout: WAIT });
  await page.evaluate((cfg) => window.start(cfg),
    { key: APP.key, wsHost: '127.0.0.1', wsPort: port, authUrl, user });
  pages[user] = page;
  await waitLog(user, { kind: 'state', to: 'connected' });
  return page;
}

/** The first log entry of `user`'s page (from index `since`) whose fields match `want`. */
async function waitLog(user, want, since = 0, timeout = WAIT) {
  const handle = await pages[user].waitForFunction(([w, s]) => {
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    return window.log.slice(s).find((e) => Object.entries(w).every(([k, v]) => same(e[k], v)));
  }, [want, since], { timeout });
  return handle.jsonValue();
}

const logLength = (user) => pages[user].evaluate(() => window.log.length);
const entries = (user, kind) => pages[user].evaluate((k) => window.log.filter((e) => e.kind === k), kind);
const sub = (user, channel) => pages[user].evaluate((c) => window.sub(c), channel);

let consoleLog;

before(async () => {
  mkdirSync(LOGS, { recursive: true });
  consoleLog = createWriteStream(path.join(LOGS, 'browser-console.log'));
  // A free port (bound and released); Herald takes it, and its replacement shares it.
  const probe = createServer();
  port = Number(new URL(await listen(probe)).port);
  probe.close();
  herald = await startHerald(restarts);
  backend = new PusherServer({ ...APP, host: '127.0.0.1', port: String(port), useTLS: false });
  pageServer = createServer(async (req, res) => {
    const file = { '/': 'browser.page.html', '/pusher.min.js': 'node_modules/pusher-js/dist/web/pusher.min.js' }[req.url];
    if (!file) {
      res.writeHead(404);
      res.end();
      return;
    }
    const type = file.endsWith('.html') ? 'text/html' : 'text/javascript';
    res.writeHead(200, { 'Content-Type': `${type}; charset=utf-8` });
    res.end(await readFile(path.join(here, file)));
  });
  pageUrl = `${await listen(pageServer)}/`;
  authServer = createServer(authHandler);
  authUrl = await listen(authServer);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  await openBrowser('alice');
});

after(async () => {
  for (const [user, page] of Object.entries(pages)) {
    await page.screenshot({ path: path.join(LOGS, `browser-${user}.png`), fullPage: true }).catch(() => {});
  }
  if (browser) await browser.close();
  pageServer?.close();
  authServer?.close();
  await stopHerald(herald);
  consoleLog?.end();
});

test('public channel: subscribe in the browser, the SDK triggers over HTTP', async () => {
  const channel = `pub-${RUN}`;
  await sub('alice', channel);
  await waitLog('alice', { kind: 'subscribed', channel });
  const r = await backend.trigger(channel, 'greeting', { hello: 'browser', n: 1 });
  assert.equal(r.status, 200);
  const got = await waitLog('alice', { kind: 'event', channel, event: 'greeting' });
  assert.deepEqual(got.data, { hello: 'browser', n: 1 });
});

test('private channel: cross-origin auth endpoint (CORS), then a triggered event', async () => {
  const channel = `private-${RUN}`;
  await sub('alice', channel);
  await waitLog('alice', { kind: 'subscribed', channel });
  const seen = authSeen.find((a) => a.channel === channel);
  assert.ok(seen, 'the auth endpoint was asked');
  assert.equal(seen.origin, new URL(pageUrl).origin, 'asked cross-origin by the page');
  await backend.trigger(channel, 'secret', 'only-for-subscribers');
  const got = await waitLog('alice', { kind: 'event', channel, event: 'secret' });
  assert.equal(got.data, 'only-for-subscribers');
});

test('private channel refused by the auth endpoint: subscription_error 403', async () => {
  const channel = `private-denied-${RUN}`;
  await sub('alice', channel);
  const e = await waitLog('alice', { kind: 'sub_error', channel });
  assert.equal(e.status, 403);
  assert.equal(e.type, 'AuthError');
});

const room = `presence-room-${RUN}`;

test('presence: two browsers see each other join and leave', async () => {
  await sub('alice', room);
  const a = await waitLog('alice', { kind: 'subscribed', channel: room });
  assert.deepEqual(a.members, { count: 1, me: { id: 'alice', info: { name: 'ALICE' } }, ids: ['alice'] });
  const mark = await logLength('alice');
  await openBrowser('bob');
  await sub('bob', room);
  const b = await waitLog('bob', { kind: 'subscribed', channel: room });
  assert.deepEqual(b.members.ids, ['alice', 'bob']);
  assert.equal(b.members.count, 2);
  const added = await waitLog('alice', { kind: 'member', event: 'pusher:member_added' }, mark);
  assert.deepEqual([added.id, added.info], ['bob', { name: 'BOB' }]);
});

test('client events: bob hears alice with her user_id, alice does not hear herself', async () => {
  const sent = await pages.alice.evaluate((c) => window.trigger(c, 'client-typing', { typing: true }), room);
  assert.equal(sent, true, 'pusher-js accepted the client event');
  const got = await waitLog('bob', { kind: 'client', channel: room });
  assert.deepEqual(got.data, { typing: true });
  assert.deepEqual(got.meta, { user_id: 'alice' });
  // And back, so that alice has certainly received everything sent before it.
  await pages.bob.evaluate((c) => window.trigger(c, 'client-typing', { typing: false }), room);
  const back = await waitLog('alice', { kind: 'client', channel: room });
  assert.deepEqual([back.data, back.meta], [{ typing: false }, { user_id: 'bob' }]);
  const own = (await entries('alice', 'client')).filter((e) => e.meta.user_id === 'alice');
  assert.equal(own.length, 0, 'the sender got its own client event back');
});

test('presence: bob closes his tab, alice sees member_removed', async () => {
  const mark = await logLength('alice');
  await pages.bob.screenshot({ path: path.join(LOGS, 'browser-bob.png'), fullPage: true });
  await pages.bob.context().close();
  delete pages.bob;
  const removed = await waitLog('alice', { kind: 'member', event: 'pusher:member_removed' }, mark);
  assert.equal(removed.id, 'bob');
});

test('Herald restart: close 4200, pusher-js reconnects at once and resubscribes', async () => {
  const mark = await logLength('alice');
  // Rolling restart: the new process joins the port's SO_REUSEPORT group, then the old one
  // drains (it drops its listeners first, so the reconnect lands on the new one).
  restarts += 1;
  const next = await startHerald(restarts);
  const old = herald;
  herald = next;
  const t0 = Date.now();
  assert.equal(await stopHerald(old), 0, 'the old Herald exits 0');
  const err = await waitLog('alice', { kind: 'error' }, mark);
  // pusher-js reports the close as a PusherError with its code, then acts on it (4200: retry).
  assert.deepEqual([err.error.type, err.error.data.code], ['PusherError', 4200], JSON.stringify(err));
  const up = await waitLog('alice', { kind: 'state', to: 'connected' }, mark);
  assert.match(up.socket_id, /^\d+\.\d+$/);
  const states = (await pages.alice.evaluate((m) => window.log.slice(m), mark))
    .filter((e) => e.kind === 'state').map((e) => `${e.from}>${e.to}`);
  assert.deepEqual(states.slice(0, 2), ['connected>connecting', 'connecting>connected'],
    'straight back to connected, no unavailable or failed state in between');
  // (The socket id may repeat: it names a slot of the new process, `<shard>.<gen<<32|slot>`.)
  // Every channel is subscribed again (presence and private re-authorised), and HTTP events
  // through the new process arrive.
  for (const channel of [`pub-${RUN}`, `private-${RUN}`, room]) {
    await waitLog('alice', { kind: 'subscribed', channel }, mark);
  }
  await backend.trigger(`pub-${RUN}`, 'after-restart', { ok: true });
  const got = await waitLog('alice', { kind: 'event', event: 'after-restart' }, mark);
  assert.deepEqual(got.data, { ok: true });
  console.log(`reconnected and resubscribed ${Date.now() - t0} ms after SIGTERM`);
});

test('user sign-in (authenticateUser), then the SDK sends to the user', async () => {
  const mark = await logLength('alice');
  await pages.alice.evaluate(() => window.p.signin());
  const s = await waitLog('alice', { kind: 'signin' }, mark);
  assert.equal(JSON.parse(s.data.user_data).id, 'alice');
  assert.ok(authSeen.some((a) => a.path === '/pusher/user-auth' && a.user === 'alice'));
  // pusher-js subscribes #server-to-user-alice by itself after the sign-in; retry the send
  // until that subscription is in place (the SDK gets 200 either way).
  const got = pages.alice.waitForFunction(() => window.log.find((e) => e.kind === 'user_event'),
    null, { timeout: WAIT });
  const deadline = Date.now() + WAIT;
  let ev;
  while (!ev && Date.now() < deadline) {
    await backend.sendToUser('alice', 'server-event', { hi: 'alice' });
    ev = await Promise.race([got.then((h) => h.jsonValue()),
      new Promise((ok) => setTimeout(ok, 200))]);
  }
  assert.deepEqual(ev?.data, { hi: 'alice' });
});
