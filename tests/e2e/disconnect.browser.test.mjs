// The real Channelstream JS client in real Chromium: `client.disconnect()` posts /disconnect and
// closes the websocket in the same tick (vendor/channelstream.js: `request.execute();
// this.closeConnection();`).  Channelstream 0.7.1 keeps a connection whose socket closed until
// its next 1 s GC pass (ws_app.py `closed()` only calls `mark_for_gc()`), so the answer is
// `true` every time; a server that forgets the connection when the socket closes answers
// `false` whenever the close wins the race.  Run 20 times, each must answer `true`.
//
// The page is served by a tiny local HTTP server (the JS client files from vendor/, as ES
// modules) on another port than the push server, so the calls are cross-origin, as from a
// real site: /disconnect goes through a CORS preflight, the websocket does not.  The test
// itself makes each signed /connect (the page never sees the secret).
// Environment: CS_URL, CS_SECRET (see harness.mjs); CHROMIUM (default /usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CS_URL, WS_URL, signedCall } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RUNS = 20;
const IDLE_MS = 1200;
const RUN = randomBytes(4).toString('hex');
const ROOM = `dc-room-${RUN}`;

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>disconnect</title>
<script type="module">
import { ChannelStreamConnection } from '/vendor/index.js';
// One connection made by the test: open its websocket, then disconnect() once it is open and
// resolve with what the client's disconnectCallback received.
window.disconnectOnce = (connId, wsUrl, disconnectUrl) => new Promise((resolve, reject) => {
    const c = new ChannelStreamConnection();
    c.connectionId = connId;
    c.websocketUrl = wsUrl;
    c.disconnectUrl = disconnectUrl;
    c.shouldReconnect = false;
    c.heartbeats = false;
    const timer = setTimeout(() => reject(new Error('no /disconnect answer within 5 s')), 5000);
    let t0;
    c.listenOpenedCallback = () => {
        t0 = performance.now();
        c.disconnect();
    };
    c.listenErrorCallback = () => reject(new Error('websocket error'));
    c.disconnectCallback = (request, data) => {
        clearTimeout(timer);
        const ms = Math.round(performance.now() - t0);
        resolve({ status: request.status, data, text: request.responseText, ms });
    };
    c.startListening();
});
window.ready = true;
</script>`;

let server;
let pageUrl;
let browser;
let page;

before(async () => {
    server = createServer(async (req, res) => {
        const url = new URL(req.url, 'http://x');
        if (url.pathname === '/') {
            res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
            res.end(PAGE);
            return;
        }
        const m = /^\/vendor\/([\w.-]+\.js)$/.exec(url.pathname);
        if (m) {
            try {
                const body = await readFile(path.join(here, 'vendor', m[1]));
                res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
                res.end(body);
                return;
            } catch {
                // fall through to 404
            }
        }
        res.writeHead(404);
        res.end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    pageUrl = `http://127.0.0.1:${server.address().port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage();
    await page.goto(pageUrl);
    await page.waitForFunction(() => window.ready === true, null, { timeout: 10000 });
});

after(async () => {
    if (browser) await browser.close();
    if (server) server.close();
});

test(`client.disconnect() answers true (${RUNS} runs)`, { timeout: 150000 }, async () => {
    const answers = [];
    const took = [];
    for (let i = 0; i < RUNS; i++) {
        // Not a wait for an event: the condition under test. A quiet second lets a server
        // whose GC only runs when something can be due fall behind its 1 s grid, where a mark
        // would be collected at once (before the /disconnect that follows the close).
        await new Promise((r) => setTimeout(r, IDLE_MS));
        const conn = await signedCall('/connect', {
            username: `dc-user-${RUN}-${i}`,
            channels: [ROOM],
            channel_configs: { [ROOM]: { notify_presence: true } },
        });
        assert.equal(conn.status, 200, `run ${i}: /connect ${conn.text}`);
        const connId = conn.json.conn_id;
        const got = await page.evaluate(
            ([id, ws, dc]) => window.disconnectOnce(id, ws, dc),
            [connId, WS_URL, `${CS_URL}/disconnect`],
        );
        answers.push(got.data);
        took.push(got.ms);
        assert.equal(got.status, 200, `run ${i}: /disconnect status (${got.text})`);
    }
    const trues = answers.filter((a) => a === true).length;
    console.log(`disconnect answered true in ${trues}/${RUNS} runs (ms per answer: ${took.join(' ')})`);
    assert.deepEqual(answers, Array(RUNS).fill(true));
});
