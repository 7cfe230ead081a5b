// End-to-end chat scenario: the real Channelstream JS client (two ChannelStreamConnection
// instances, alice on a websocket and bob on long polling) talks to a demo backend that
// signs and forwards to the push server under test (CS_URL), exactly as a browser page of
// channelstream_demos' chat would.  The same file must pass against Channelstream 0.7.1 and
// against Herald: it asserts only what the client and the backend can observe.
//
// The tests run in order and share the two clients; each awaits callbacks with timeouts.
// Environment: CS_URL (default http://127.0.0.1:8000), CS_SECRET (default "secret"),
// PYTHON (default python3, runs demo_backend.py).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
    BACKEND_PY, CS_URL, CS_SECRET, PYTHON, ChannelStreamSigner, makeClient, shutdown,
    signedCall, startBackend, stopBackend, until, withTimeout,
} from './harness.mjs';

// Fresh names per run: users and channels live on in the server (users for a day, channels
// forever) and channel_configs only apply to channels a call creates.
const RUN = randomBytes(4).toString('hex');
const ROOM = `room-${RUN}`; // demo backend: presence + user lists + state + history
const QUIET = `quiet-${RUN}`; // demo backend: server defaults (no presence, no history)
const ALICE = `alice-${RUN}`;
const BOB = `bob-${RUN}`;

const ROOM_SETTINGS = {
    notify_presence: true,
    store_history: true,
    history_size: 10,
    broadcast_presence_with_user_lists: true,
    notify_state: true,
    store_frames: true,
};
const DEFAULT_SETTINGS = {
    notify_presence: false,
    store_history: false,
    history_size: 10,
    broadcast_presence_with_user_lists: false,
    notify_state: false,
    store_frames: true,
};
const alicePublic = { status: 'online', color: `c-${ALICE}` };
const bobPublic = { status: 'online', color: `c-${BOB}` };
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// naive UTC ISO-8601, microseconds optional (spec §8)
const TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$/;
const MESSAGE_KEYS = ['catchup', 'channel', 'edited', 'message', 'timestamp', 'type', 'user', 'uuid'];

const keys = (o) => Object.keys(o).sort();

// A websocket client gets everything live (catchup=false).  A long-poll client may get an
// item through catch-up instead (catchup=true) when it was pushed while no poll was in
// flight: the client re-polls right after each response, but the gap exists (spec §5.10).
function assertLiveOrCaughtUp(who, item) {
    if (who.c.noWebsocket) {
        assert.ok(item.catchup === false || item.catchup === true, `${who.rec.name}: catchup flag`);
    } else {
        assert.equal(item.catchup, false, `${who.rec.name}: live over the websocket`);
    }
}
const isText = (text) => (m) => m.type === 'message' && m.message && m.message.text === text;

let backend; // {url, proc}
let alice; // {c, rec}
let bob; // {c, rec}
let aliceOpenedAt = 0;
let helloUuid;
let partedIndex = -1; // bob's event index of alice's 'parted'
// what run.sh started: 'channelstream' (the reference), 'herald', or '' (unknown)
const SERVER_KIND = process.env.E2E_SERVER_KIND || '';

describe('Channelstream JS client + demo backend against ' + CS_URL, { timeout: 58000 }, () => {
    before(async () => {
        backend = await startBackend();
    });

    after(async () => {
        shutdown(alice && alice.c);
        shutdown(bob && bob.c);
        await stopBackend(backend && backend.proc);
    });

    test('signers: backend signer matches the spec vectors, JS signer tokens are accepted', async (t) => {
        // demo_backend.py's stdlib re-implementation of itsdangerous' TimestampSigner
        const self = spawnSync(PYTHON, [BACKEND_PY, '--self-test'], { encoding: 'utf8' });
        assert.equal(self.status, 0, self.stdout + self.stderr);

        // The client's ChannelStreamSigner: deterministic vector from spec §3.2 (its timestamp
        // keeps a '=': String.replace only replaces the first occurrence).
        const realNow = Date.now;
        const signer = new ChannelStreamSigner('secret');
        let quirky = null;
        try {
            Date.now = () => 1700000000000;
            assert.equal(signer.signRequest(), 'channelstream.ZVPxAA=.UnambZyUHmgFmelQMUgVo1LT02M');
            // Find a recent second whose JS token still has '+' or '/' in the signature,
            // which the server must decode leniently.
            const jsSigner = new ChannelStreamSigner(CS_SECRET);
            const nowS = Math.floor(realNow() / 1000);
            for (let s = nowS; s > nowS - 50 && !quirky; s--) {
                Date.now = () => s * 1000;
                const tok = jsSigner.signRequest();
                if (/[+/]/.test(tok.split('.')[2])) quirky = tok;
            }
        } finally {
            Date.now = realNow;
        }

        const probe = { info: { channels: [`nothing-${RUN}`] } };
        const fresh = await signedCall('/info', probe);
        assert.equal(fresh.status, 200, fresh.text);
        assert.deepEqual(fresh.json, { channels: {}, users: [] });
        if (quirky) {
            const q = await signedCall('/info', probe, { token: quirky });
            assert.equal(q.status, 200, `token ${quirky}: ${q.text}`);
            t.diagnostic(`JS-style token with '+' or '/' in its signature accepted: ${quirky}`);
        } else {
            t.diagnostic("no JS token with '+' or '/' in the last 50 s; that case was not probed");
        }
        // and the server does check: a token signed with another secret is refused
        const wrong = await signedCall('/info', probe, { token: new ChannelStreamSigner(CS_SECRET + 'x').signRequest() });
        assert.equal(wrong.status, 401, wrong.text);
    });

    test('alice connects through the backend and listens on a websocket', async () => {
        alice = makeClient(ALICE, backend.url, { channels: [ROOM, QUIET] });
        alice.c.connect();
        const { data, status } = await alice.rec.waitFor('connect');
        assert.equal(status, 200);
        assert.match(data.conn_id, UUID_RE);
        assert.equal(alice.c.connectionId, data.conn_id);
        assert.deepEqual(data.channels, [QUIET, ROOM].sort());
        assert.deepEqual(alice.c.channels, data.channels);
        assert.equal(data.username, ALICE);
        assert.deepEqual(data.state, { ...alicePublic, private_note: `only-${ALICE}` });
        assert.deepEqual(data.public_state, alicePublic);
        // the backend's channel_configs were applied to the channels /connect created
        assert.deepEqual(data.channels_info.channels[ROOM].settings, ROOM_SETTINGS);
        assert.deepEqual(data.channels_info.channels[QUIET].settings, DEFAULT_SETTINGS);
        assert.deepEqual(data.channels_info.channels[ROOM].users, [ALICE]);
        assert.deepEqual(data.channels_info.users, [{ user: ALICE, state: alicePublic }]);

        await alice.rec.waitFor('listenOpened');
        aliceOpenedAt = Date.now();
        assert.equal(alice.c.connected, true);
        assert.equal(alice.c.noWebsocket, false);
        assert.equal(alice.c.websocket.readyState, WebSocket.OPEN);
        // observe (without changing) what alice's socket sends and how it closes
        const ws = alice.c.websocket;
        const send = ws.send.bind(ws);
        ws.send = (payload) => {
            alice.rec.record('sent', payload);
            return send(payload);
        };
        ws.addEventListener('close', (e) => alice.rec.record('wsClose', { code: e.code, reason: e.reason }));
        // closeConnection() drops onerror; in a browser a late error event is harmless, with
        // ws an error event nobody listens to is thrown, so keep a listener (and record it)
        ws.addEventListener('error', (e) => alice.rec.record('wsError', String(e.message || e.error)));
    });

    test('bob connects with long polling; alice sees him join with the user list', async () => {
        bob = makeClient(BOB, backend.url, {
            channels: [ROOM],
            noWebsocket: true,
            // the client may also talk to the push server's /disconnect directly (spec §11)
            disconnectUrl: `${CS_URL}/disconnect`,
        });
        bob.c.connect();
        const { data, status } = await bob.rec.waitFor('connect');
        assert.equal(status, 200);
        assert.deepEqual(data.channels, [ROOM]);
        assert.deepEqual(data.channels_info.channels[ROOM].users, [ALICE, BOB]);
        const others = data.channels_info.users.filter((u) => u.user === ALICE);
        assert.deepEqual(others, [{ user: ALICE, state: alicePublic }], 'public state only');
        await bob.rec.waitFor('listenOpened');
        assert.equal(bob.c.websocket, null, 'long polling, no websocket');

        const joined = await alice.rec.waitItem((m) => m.type === 'presence' && m.user === BOB);
        assert.equal(joined.channel, ROOM);
        assert.deepEqual(joined.message, { action: 'joined' });
        assert.deepEqual(joined.users, [
            { user: ALICE, state: alicePublic },
            { user: BOB, state: bobPublic },
        ]);
        assert.deepEqual(joined.state, bobPublic);
        assert.equal(joined.catchup, false);
        assert.match(joined.uuid, UUID_RE);
        assert.match(joined.timestamp, TS_RE);
    });

    test('messages reach the websocket and the long-poll client', async () => {
        alice.c.message({ user: ALICE, channel: ROOM, message: { text: 'hello from alice' } });
        const sent = await alice.rec.waitFor('message');
        assert.equal(sent.status, 200);
        assert.equal(sent.data.length, 1);
        helloUuid = sent.data[0].uuid;
        assert.match(helloUuid, UUID_RE);
        assert.equal(sent.data[0].edited, null);

        for (const who of [alice, bob]) {
            const m = await who.rec.waitItem(isText('hello from alice'));
            assert.deepEqual(keys(m), MESSAGE_KEYS, `${who.rec.name}: no delivery fields leak`);
            assert.equal(m.uuid, helloUuid);
            assert.equal(m.channel, ROOM);
            assert.equal(m.user, ALICE);
            assertLiveOrCaughtUp(who, m);
            assert.equal(m.edited, null);
            assert.match(m.timestamp, TS_RE);
        }

        bob.c.message({ user: BOB, channel: ROOM, message: { text: 'hi alice' } });
        const reply = await alice.rec.waitItem(isText('hi alice'));
        assert.equal(reply.user, BOB);
        await bob.rec.waitItem(isText('hi alice')); // the sender is not excluded

        // a channel bob is not in: alice gets it, bob does not (checked behind a barrier)
        alice.c.message({ user: ALICE, channel: QUIET, message: { text: 'quiet 1' } });
        await alice.rec.waitItem(isText('quiet 1'));
        alice.c.message({ user: ALICE, channel: ROOM, message: { text: 'barrier 1' } });
        await bob.rec.waitItem(isText('barrier 1'));
        assert.deepEqual(bob.rec.items(isText('quiet 1')), []);
        assert.deepEqual(bob.rec.all('messageError').concat(alice.rec.all('messageError')), []);
    });

    test('subscribe and unsubscribe', async () => {
        bob.c.subscribe([QUIET]);
        const sub = await bob.rec.waitFor('subscribe');
        assert.equal(sub.status, 200);
        assert.deepEqual(sub.data.channels, [QUIET, ROOM].sort());
        assert.deepEqual(sub.data.subscribed_to, [QUIET]);
        assert.deepEqual(bob.c.channels, sub.data.channels);
        assert.deepEqual(sub.data.channels_info.channels[QUIET].users, [ALICE, BOB].sort());

        alice.c.message({ user: ALICE, channel: QUIET, message: { text: 'quiet 2' } });
        const q2 = await bob.rec.waitItem(isText('quiet 2'));
        assert.equal(q2.channel, QUIET);
        await alice.rec.waitItem(isText('quiet 2'));
        // QUIET has notify_presence off: nobody was told that bob joined it
        assert.deepEqual(alice.rec.items((m) => m.type === 'presence' && m.channel === QUIET), []);

        const mark = bob.rec.mark();
        bob.c.unsubscribe([QUIET]);
        const unsub = await bob.rec.waitFor('unsubscribe', () => true, { since: mark });
        assert.equal(unsub.status, 200);
        assert.deepEqual(unsub.data.channels, [ROOM]);
        assert.deepEqual(unsub.data.unsubscribed_from, [QUIET]);
        assert.deepEqual(bob.c.channels, [ROOM]);

        alice.c.message({ user: ALICE, channel: QUIET, message: { text: 'quiet 3' } });
        await alice.rec.waitItem(isText('quiet 3'));
        alice.c.message({ user: ALICE, channel: ROOM, message: { text: 'barrier 2' } });
        await bob.rec.waitItem(isText('barrier 2'));
        assert.deepEqual(bob.rec.items(isText('quiet 3')), []);
    });

    test('user state change (client update_state -> /user_state) reaches everyone', async () => {
        bob.c.updateUserState({ status: 'away' });
        const res = await bob.rec.waitFor('userState');
        assert.equal(res.status, 200);
        assert.deepEqual(res.data.changed_state, [{ key: 'status', value: 'away' }]);
        assert.equal(res.data.user_state.status, 'away');
        assert.deepEqual(res.data.public_keys, ['status', 'color']);

        const isAway = (m) => m.type === 'user_state_change' && m.user === BOB &&
            m.message.changed.length === 1;
        for (const who of [alice, bob]) { // the user itself is told too (spec §7.5)
            const ev = await who.rec.waitItem(isAway);
            assert.equal(ev.channel, ROOM);
            assert.deepEqual(ev.message, {
                state: { status: 'away', color: `c-${BOB}` },
                changed: [{ key: 'status', value: 'away' }],
            });
            assertLiveOrCaughtUp(who, ev);
            assert.match(ev.uuid, UUID_RE);
        }

        // only a private key changes: the event still comes, with nothing private in it
        bob.c.updateUserState({ private_note: 'changed' });
        const priv = await alice.rec.waitItem((m) => m.type === 'user_state_change' && m.user === BOB &&
            m.message.changed.length === 0);
        assert.deepEqual(priv.message, { state: { status: 'away', color: `c-${BOB}` }, changed: [] });
    });

    test('edit and delete reach both clients and change the channel history', async () => {
        alice.c.edit({ uuid: helloUuid, channel: ROOM, user: ALICE, message: { text: 'hello (edited)' } });
        const res = await alice.rec.waitFor('messageEdit');
        assert.equal(res.status, 200);
        assert.match(res.data[0].edited, TS_RE);

        for (const who of [alice, bob]) {
            const ev = { ...(await who.rec.waitItem((m) => m.type === 'message:edit' && m.uuid === helloUuid)) };
            // edit events carry only the edited keys, and no "catchup" (spec §7.6) unless
            // they come through catch-up (long poll only)
            if (who.c.noWebsocket && 'catchup' in ev) {
                assert.equal(ev.catchup, true);
                delete ev.catchup;
            }
            assert.deepEqual(ev, {
                channel: ROOM,
                uuid: helloUuid,
                user: ALICE,
                message: { text: 'hello (edited)' },
                edited: res.data[0].edited,
                type: 'message:edit',
            });
        }
        const info = await signedCall('/info', { info: { channels: [ROOM] } });
        assert.equal(info.status, 200, info.text);
        const stored = info.json.channels[ROOM].history.find((h) => h.uuid === helloUuid);
        assert.deepEqual(stored.message, { text: 'hello (edited)' });
        assert.equal(stored.edited, res.data[0].edited);

        alice.c.delete({ uuid: helloUuid, channel: ROOM });
        const del = await alice.rec.waitFor('messageDelete');
        assert.equal(del.status, 200);
        for (const who of [alice, bob]) {
            const ev = { ...(await who.rec.waitItem((m) => m.type === 'message:delete')) };
            if (who.c.noWebsocket && 'catchup' in ev) {
                assert.equal(ev.catchup, true);
                delete ev.catchup;
            }
            assert.deepEqual(ev, { channel: ROOM, uuid: helloUuid, type: 'message:delete' });
        }
        const after = await signedCall('/info', { info: { channels: [ROOM] } });
        const history = after.json.channels[ROOM].history;
        assert.deepEqual(history.filter((h) => h.uuid === helloUuid), []);
        assert.ok(history.some((h) => h.message && h.message.text === 'hi alice'), 'other history kept');
    });

    test('long-poll catch-up: a message sent between two polls arrives with catchup=true', async () => {
        // Hold bob's next re-poll (the client calls openLongPoll again as soon as a poll
        // returns) so that a message is sent while bob has no poll in flight.
        let release;
        const held = new Promise((resolve) => {
            bob.c.openLongPoll = () => {
                delete bob.c.openLongPoll; // back to the prototype's method
                release = () => bob.c.openLongPoll();
                resolve();
            };
        });
        // end bob's current poll quickly (a message, or an idle heartbeat within 5 s)
        alice.c.message({ user: ALICE, channel: ROOM, message: { text: 'wake bob' } });
        await withTimeout(held, 8000, "bob's poll to return");
        const mark = bob.rec.mark();

        alice.c.message({ user: ALICE, channel: ROOM, message: { text: 'while bob is away' } });
        const live = await alice.rec.waitItem(isText('while bob is away')); // delivered by now
        release(); // the client's own openLongPoll: GET /listen?conn_id=...
        const caught = await bob.rec.waitItem(isText('while bob is away'), { since: mark, timeoutMs: 7000 });
        assert.equal(caught.catchup, true);
        assert.equal(caught.uuid, live.uuid);
        assert.deepEqual(keys(caught), MESSAGE_KEYS);
        // polling goes on normally afterwards
        alice.c.message({ user: ALICE, channel: ROOM, message: { text: 'after catch-up' } });
        const next = await bob.rec.waitItem(isText('after catch-up'), { since: mark });
        assertLiveOrCaughtUp(bob, next);
        assert.ok(bob.rec.items(isText('wake bob')).length >= 1, 'the wake-up message was not lost');
    });

    test("the client's own 10 s heartbeat does not disturb the websocket", async () => {
        const left = Math.max(0, aliceOpenedAt + 10000 - Date.now());
        const hb = await alice.rec.waitFor('sent', (d) => d === '{"type":"heartbeat"}', { timeoutMs: left + 3000 });
        assert.ok(hb);
        bob.c.message({ user: BOB, channel: ROOM, message: { text: 'after heartbeat' } });
        await alice.rec.waitItem(isText('after heartbeat'));
        assert.equal(alice.c.connected, true);
        assert.equal(alice.c.websocket.readyState, WebSocket.OPEN);
        assert.deepEqual(alice.rec.all('listenClose'), []);
        assert.deepEqual(alice.rec.all('listenError'), []);
        assert.deepEqual(alice.rec.all('wsClose'), []);
        assert.equal(alice.rec.all('connect').length, 1, 'no reconnect happened');
    });

    test('server heartbeats reach listenMessageCallback as []', async () => {
        const empty = (d) => Array.isArray(d) && d.length === 0;
        await alice.rec.waitFor('messages', empty, { timeoutMs: 7000, label: 'websocket heartbeat []' });
        await bob.rec.waitFor('messages', empty, { timeoutMs: 7000, label: 'long-poll heartbeat []' });
        for (const who of [alice, bob]) {
            for (const { data } of who.rec.all('messages')) {
                assert.ok(Array.isArray(data), `${who.rec.name}: every payload is an array`);
            }
        }
        assert.deepEqual(bob.rec.all('listenError'), []);
    });

    test('alice disconnects through the backend; bob (long poll) sees her part', async (t) => {
        const bobMark = bob.rec.mark();
        alice.c.disconnect();
        const aliceBye = await alice.rec.waitFor('disconnect');
        assert.equal(aliceBye.status, 200);
        assert.equal(aliceBye.data, true);
        assert.equal(alice.c.connected, false);

        const partedEv = await bob.rec.waitFor('item', (m) => m.type === 'presence' && m.user === ALICE &&
            m.message.action === 'parted', { since: bobMark, timeoutMs: 5000 });
        const parted = partedEv.data;
        assert.equal(parted.channel, ROOM);
        assert.deepEqual(parted.users, [{ user: BOB, state: { status: 'away', color: `c-${BOB}` } }]);
        assert.equal(parted.state, null);
        assertLiveOrCaughtUp(bob, parted);
        partedIndex = bob.rec.events.indexOf(partedEv);

        // the websocket close handshake, as the client library sees it
        const closed = await alice.rec.waitFor('wsClose');
        const wsErrors = alice.rec.all('wsError').map((e) => e.data);
        t.diagnostic(`alice's websocket closed with code ${closed.data.code}` +
            (wsErrors.length ? `, error: ${wsErrors.join('; ')}` : ''));
        assert.deepEqual(alice.rec.all('listenClose'), [], 'handlers were removed: no reconnect');
        if (SERVER_KIND === 'channelstream') {
            // Channelstream 0.7.1 answers the client's close frame with the reserved code
            // 1005 on the wire; ws rejects that as a protocol error (browsers log it).
            assert.equal(closed.data.code, 1006);
            assert.match(wsErrors.join(' '), /invalid status code 1005/);
        } else if (SERVER_KIND === 'herald') {
            // what the spec asks of Herald: a valid close reply (1000, or no status)
            assert.ok([1000, 1005].includes(closed.data.code), `close code ${closed.data.code}`);
            assert.deepEqual(wsErrors, []);
        }
    });

    test('bob disconnects at the push server directly; the room empties', async (t) => {
        // The client re-polls from a setTimeout(0) scheduled before listenMessageCallback
        // runs, and disconnect() does not cancel that timer: calling it right after a
        // callback would leave a zombie poll loop running.  Wait for the re-poll instead.
        await bob.rec.waitFor('listenOpened', () => true, { since: partedIndex + 1 });

        // the client POSTs {conn_id} to the push server's /disconnect?conn_id=... itself
        const started = Date.now();
        bob.c.disconnect();
        const bye = await bob.rec.waitFor('disconnect');
        assert.equal(bye.status, 200);
        assert.equal(bye.data, true);
        assert.equal(bob.c.connected, false);
        // Channelstream quirk: the aborted /listen is still parked on the server; if it wakes
        // (heartbeat, or its 5 s timeout) before the next 1 s GC pass, it marks the connection
        // active again, which then lives until the 15 s inactivity GC: up to ~21 s.
        const room = await until('room is empty', async () => {
            const r = await signedCall('/info', { info: { channels: [ROOM] } });
            return r.json.channels[ROOM].users.length === 0 && r.json.channels[ROOM];
        }, { timeoutMs: 23000, everyMs: 250 });
        t.diagnostic(`room empty ${Date.now() - started} ms after bob's disconnect()`);
        assert.equal(room.total_connections, 0);

        // neither client tried to reconnect or saw an error
        assert.equal(alice.rec.all('connect').length, 1);
        assert.equal(bob.rec.all('connect').length, 1);
        for (const who of [alice, bob]) {
            for (const kind of ['connectError', 'subscribeError', 'unsubscribeError', 'userStateError',
                'messageError', 'messageEditError', 'messageDeleteError', 'listenClose']) {
                assert.deepEqual(who.rec.all(kind), [], `${who.rec.name}: ${kind}`);
            }
        }
    });
});
