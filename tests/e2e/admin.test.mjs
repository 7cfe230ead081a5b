// End-to-end test of Herald's admin web app in a real headless browser (Debian chromium driven
// by playwright-core): sign in, watch a user connect and a message arrive on the live
// dashboard, publish from the page and see it on the test's websocket, change a channel's
// config from the page and see it in /info, send /info from the API explorer, sign out.
//
// Herald only: Channelstream 0.7.1's admin is a different app (run.sh runs this file only
// when the server is Herald). Environment: CS_URL (default http://127.0.0.1:8000), CS_SECRET
// (default "secret"), CHROMIUM (default /usr/bin/chromium), ADMIN_USER / ADMIN_SECRET
// (default admin / admin_secret, as run.sh's ini). A screenshot of the dashboard is kept in
// logs/admin-dashboard.png, one of the explorer in logs/admin-explorer.png (gitignored).
//
// Every wait is on an event (a selector, a page condition, a websocket frame), bounded.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { WebSocket } from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const CS_URL = (process.env.CS_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
const CS_SECRET = process.env.CS_SECRET || 'secret';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ADMIN_USER = process.env.ADMIN_USER || 'admin';
const ADMIN_SECRET = process.env.ADMIN_SECRET || 'admin_secret';
const ARTEFACTS = path.join(here, 'logs');
const WAIT_MS = 10_000;

const RUN = randomBytes(4).toString('hex');
const USER = `ada-${RUN}`;
const CHANNEL = `ops-${RUN}`;

/** itsdangerous 1.1 TimestampSigner token for `secret` (spec §3.2), as a backend signs. */
function sign(secret) {
    const b64 = (b) => Buffer.from(b).toString('base64url');
    const key = createHash('sha1').update('itsdangerous.Signersigner' + secret).digest();
    let ts = Buffer.alloc(8);
    ts.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000)));
    while (ts.length > 1 && ts[0] === 0) ts = ts.subarray(1);
    const signed = `channelstream.${b64(ts)}`;
    return `${signed}.${b64(createHmac('sha1', key).update(signed).digest())}`;
}

/** A signed server-API call, as a backend makes it. */
async function signed(method, pathname, body) {
    const res = await fetch(CS_URL + pathname, {
        method,
        headers: { 'x-channelstream-secret': sign(CS_SECRET), 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, json, text };
}

/** A websocket that records every pushed item and lets the test await one. */
class Socket {
    constructor(connId) {
        this.items = [];
        this.waiters = [];
        this.ws = new WebSocket(`${CS_URL.replace(/^http/, 'ws')}/ws?conn_id=${connId}`);
        this.ws.on('message', (data) => {
            let frame;
            try { frame = JSON.parse(String(data)); } catch { return; }
            for (const item of Array.isArray(frame) ? frame : [frame]) {
                this.items.push(item);
                for (const w of [...this.waiters]) {
                    if (w.pred(item)) {
                        this.waiters.splice(this.waiters.indexOf(w), 1);
                        clearTimeout(w.timer);
                        w.resolve(item);
                    }
                }
            }
        });
    }
    opened() {
        return new Promise((resolve, reject) => {
            this.ws.once('open', resolve);
            this.ws.once('error', reject);
        });
    }
    next(label, pred) {
        const seen = this.items.find(pred);
        if (seen) return Promise.resolve(seen);
        return new Promise((resolve, reject) => {
            const w = { pred, resolve };
            w.timer = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                reject(new Error(`websocket: timed out waiting for ${label}`));
            }, WAIT_MS);
            this.waiters.push(w);
        });
    }
    close() {
        this.ws.terminate();
    }
}

describe('Herald admin web app in headless chromium', { timeout: 90_000 }, () => {
    let browser;
    let page;
    let sock;

    before(async () => {
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
        });
        const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
        page = await context.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on('pageerror', (e) => console.error('page error:', e.message));
        mkdirSync(ARTEFACTS, { recursive: true });
    });

    after(async () => {
        sock?.close();
        await browser?.close();
    });

    test('without a session /admin and /api-explorer are 302s with WebOb bodies', async () => {
        for (const p of ['/admin', '/api-explorer']) {
            const r = await fetch(CS_URL + p, { redirect: 'manual', headers: { Accept: 'text/html' } });
            assert.equal(r.status, 302, p);
            const loc = `${CS_URL}/admin/sign_in`;
            assert.equal(r.headers.get('location'), loc);
            const body = await r.text();
            assert.match(body, /<title>302 Found<\/title>/);
            assert.ok(body.includes(`The resource was found at <a href="${loc}">${loc}</a>;`), body);
        }
    });

    test('sign in: the browser lands on the live dashboard', async () => {
        await page.goto(`${CS_URL}/admin`);
        await page.waitForURL(/\/admin\/sign_in$/);
        await page.fill('#username', ADMIN_USER);
        await page.fill('#password', 'wrong');
        await page.click('#sign-in');
        await page.waitForSelector('#error');
        await page.fill('#username', ADMIN_USER);
        await page.fill('#password', ADMIN_SECRET);
        await page.click('#sign-in');
        await page.waitForURL(/\/admin$/);
        await page.waitForSelector('#poll-status.ok');
        assert.match(await page.textContent('#version'), /^\d+\.\d+\.\d+$/);
    });

    test('a user connecting over a websocket shows up with its transport', async () => {
        const r = await signed('POST', '/connect', {
            username: USER,
            channels: [CHANNEL],
            fresh_user_state: { mood: 'curious', secret: 'x' },
            state_public_keys: ['mood'],
            channel_configs: { [CHANNEL]: { store_history: true, history_size: 10 } },
        });
        assert.equal(r.status, 200, r.text);
        sock = new Socket(r.json.conn_id);
        await sock.opened();
        await page.waitForSelector(`tr[data-user="${USER}"] [data-transport="websocket"][data-conn-id="${r.json.conn_id}"]`);
        const state = await page.textContent(`tr[data-user="${USER}"] code`);
        assert.deepEqual(JSON.parse(state), { mood: 'curious' });
        await page.waitForSelector(`tr[data-channel="${CHANNEL}"] .subscribers >> text=${USER}`);
        await page.waitForFunction(() => Number(document.querySelector('#tile-ws .v').textContent) >= 1);
    });

    test('a message published by a backend arrives live on the dashboard', async () => {
        const text = `live-${RUN}`;
        const r = await signed('POST', '/message', [{ channel: CHANNEL, user: 'backend', message: { text } }]);
        assert.equal(r.status, 200, r.text);
        await sock.next('the backend message', (i) => i.message?.text === text);
        await page.waitForSelector(`#feed li[data-channel="${CHANNEL}"] code.msg:has-text("${text}")`);
        await page.waitForFunction(
            (ch) => document.querySelector(`tr[data-channel="${ch}"] .history`)?.textContent.startsWith('1 /'),
            CHANNEL,
        );
        // Rates are computed from two samples: numbers, not the placeholder.
        await page.waitForFunction(() => /^\d/.test(document.querySelector('#tile-rate-in .v').textContent));
        await page.waitForSelector('#limits tr[data-metric="herald_connections_refused_total"]');
        await page.screenshot({ path: path.join(ARTEFACTS, 'admin-dashboard.png'), fullPage: true });
    });

    test('publishing from the page reaches the websocket', async () => {
        const text = `from-page-${RUN}`;
        await page.fill('#pub-channel', CHANNEL);
        await page.fill('#pub-user', 'admin-page');
        await page.fill('#pub-message', JSON.stringify({ text }));
        await page.click('#pub-send');
        await page.waitForSelector('#pub-status.ok');
        const item = await sock.next('the page message', (i) => i.message?.text === text);
        assert.equal(item.user, 'admin-page');
        assert.equal(item.channel, CHANNEL);
        await page.waitForSelector(`#feed li code.msg:has-text("${text}")`);
    });

    test('changing a channel config from the page shows in /info', async () => {
        await page.click(`tr[data-channel="${CHANNEL}"]`); // fills the form with the channel
        assert.equal(await page.inputValue('#cfg-channel'), CHANNEL);
        await page.check('#config-form input[name="notify_presence"]');
        await page.fill('#cfg-history-size', '7');
        await page.click('#cfg-send');
        await page.waitForSelector('#cfg-status.ok');
        const info = await signed('POST', '/info', { info: { channels: [CHANNEL] } });
        assert.equal(info.status, 200);
        const s = info.json.channels[CHANNEL].settings;
        assert.equal(s.history_size, 7);
        assert.equal(s.notify_presence, true);
        assert.equal(s.store_history, true);
        await page.waitForSelector(`tr[data-channel="${CHANNEL}"] .config >> text=history_size=7`);
    });

    test('the API explorer lists every operation and sends /info with the session', async () => {
        await page.click('#explorer-link');
        await page.waitForURL(/\/api-explorer$/);
        await page.waitForSelector('body[data-ready="1"]');
        const doc = (await (await fetch(`${CS_URL}/openapi.json`, {
            headers: { 'x-channelstream-secret': sign(CS_SECRET) },
        })).json());
        const want = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m} ${p}`)).sort();
        const listed = (await page.$$eval('details.op', (ds) => ds.map((d) => `${d.dataset.method} ${d.dataset.path}`))).sort();
        assert.deepEqual(listed, want);
        const op = 'details.op[data-path="/info"][data-method="post"]';
        await page.click(`${op} > summary`);
        assert.match(await page.textContent(`${op} .schema`), /ChannelInfoBody/);
        await page.fill(`${op} textarea`, JSON.stringify({ info: { channels: [CHANNEL] } }));
        await page.click(`${op} button.send`);
        await page.waitForSelector(`${op} .answer-status`);
        assert.equal(await page.textContent(`${op} .answer-status`), '200');
        assert.match(await page.textContent(`${op} .answer-headers`), /content-type: application\/json/i);
        const body = JSON.parse(await page.textContent(`${op} .answer-body`));
        assert.equal(body.channels[CHANNEL].settings.history_size, 7);
        await page.screenshot({ path: path.join(ARTEFACTS, 'admin-explorer.png'), fullPage: true });
    });

    test('sign out: back to the sign-in page, /admin is a 302 again', async () => {
        await page.click('a[href="admin/sign_out"]');
        await page.waitForURL(/\/admin\/sign_in$/);
        await page.waitForSelector('#sign-in-form');
        // The browser context's own cookie jar: the session is gone.
        const r = await page.request.get(`${CS_URL}/admin`, { maxRedirects: 0 });
        assert.equal(r.status(), 302);
        assert.equal(r.headers().location, `${CS_URL}/admin/sign_in`);
    });
});
