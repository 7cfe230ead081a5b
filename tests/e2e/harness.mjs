// Test harness: loads the REAL Channelstream JS client (vendor/, from the channelstream 0.7.1
// wheel) into Node 20 and records everything its callbacks receive.
//
// The client is browser code: it uses the globals `window.WebSocket`, `WebSocket`,
// `XMLHttpRequest` and `btoa`.  Node 20 has `btoa` but no WebSocket/XMLHttpRequest, so `ws`
// and `xhr2` stand in for them.  Nothing in the client is patched: tests only override its
// documented `*Callback` hooks (which exist to be overridden) and, where a test needs to
// control timing, wrap one of its methods without changing what it does.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { WebSocket } from 'ws';
import XMLHttpRequest from 'xhr2';

globalThis.window = globalThis; // the client tests `window.WebSocket` to pick ws vs long poll
globalThis.WebSocket = WebSocket;
globalThis.XMLHttpRequest = XMLHttpRequest;

const here = path.dirname(fileURLToPath(import.meta.url));
const client = await import(path.join(here, 'vendor', 'index.js'));
export const { ChannelStreamConnection, ChannelStreamSigner } = client;

export const CS_URL = (process.env.CS_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
export const CS_SECRET = process.env.CS_SECRET || 'secret';
export const WS_URL = CS_URL.replace(/^http/, 'ws') + '/ws';
export const PYTHON = process.env.PYTHON || 'python3';
export const BACKEND_PY = path.join(here, 'demo_backend.py');

/** Every callback hook of ChannelStreamConnection 0.1.1 and the event kind it records. */
const HOOKS = {
    connectCallback: 'connect',
    connectErrorCallback: 'connectError',
    channelsChangedCallback: 'channelsChanged',
    listenOpenedCallback: 'listenOpened',
    listenMessageCallback: 'messages',
    listenCloseCallback: 'listenClose',
    listenErrorCallback: 'listenError',
    connectionClosedCallback: 'connectionClosed',
    subscribeCallback: 'subscribe',
    subscribeErrorCallback: 'subscribeError',
    unsubscribeCallback: 'unsubscribe',
    unsubscribeErrorCallback: 'unsubscribeError',
    setUserStateCallback: 'userState',
    setUserStateErrorCallback: 'userStateError',
    messageCallback: 'message',
    messageErrorCallback: 'messageError',
    messageEditCallback: 'messageEdit',
    messageEditErrorCallback: 'messageEditError',
    messageDeleteCallback: 'messageDelete',
    messageDeleteErrorCallback: 'messageDeleteError',
    disconnectCallback: 'disconnect',
};

/**
 * Records what one client's callbacks receive and lets tests await an event with a timeout
 * (no sleeping: a waiter resolves the moment a matching event is recorded).
 *
 * Event shape: {kind, data, status, t}.  `messages` events (listenMessageCallback) are also
 * split into one `item` event per pushed object, so tests can wait for a single item.
 */
export class Recorder {
    constructor(name) {
        this.name = name;
        this.events = [];
        this.waiters = [];
        this.t0 = Date.now();
    }

    record(kind, data, status) {
        const ev = { kind, data, status, t: Date.now() - this.t0 };
        this.events.push(ev);
        for (const w of [...this.waiters]) {
            if (w.kind === ev.kind && w.pred(ev.data, ev)) {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                clearTimeout(w.timer);
                w.resolve(ev);
            }
        }
        return ev;
    }

    /** All recorded events of a kind (optionally filtered by predicate on data). */
    all(kind, pred = () => true) {
        return this.events.filter((e) => e.kind === kind && pred(e.data, e));
    }

    /** Pushed objects received so far (flattened listenMessageCallback arrays). */
    items(pred = () => true) {
        return this.all('item', pred).map((e) => e.data);
    }

    /**
     * Resolve with the first event of `kind` whose data satisfies `pred`, already recorded
     * (at index >= since) or still to come; reject after `timeoutMs` with a dump.
     */
    waitFor(kind, pred = () => true, { timeoutMs = 5000, since = 0, label = kind } = {}) {
        const found = this.events.slice(since).find((e) => e.kind === kind && pred(e.data, e));
        if (found) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
            const w = { kind, pred, resolve };
            w.timer = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                const tail = this.events.slice(-15).map((e) =>
                    `  +${e.t}ms ${e.kind}${e.status ? ' ' + e.status : ''} ${short(e.data)}`);
                reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ` +
                    `${label}; last events:\n${tail.join('\n')}`));
            }, timeoutMs);
            this.waiters.push(w);
        });
    }

    /** Wait for one pushed object (a listenMessageCallback array element). */
    waitItem(pred, opts = {}) {
        return this.waitFor('item', pred, opts).then((e) => e.data);
    }

    /** Index to pass as `since` so that only events recorded from now on count. */
    mark() {
        return this.events.length;
    }
}

function short(v) {
    let s;
    try {
        s = JSON.stringify(v);
    } catch {
        s = String(v);
    }
    return s === undefined ? '' : s.length > 300 ? s.slice(0, 300) + '…' : s;
}

/**
 * A ChannelStreamConnection wired like a page of the demo chat: XHR calls to the demo
 * backend, websocket / long poll straight to the push server.
 */
export function makeClient(name, backendUrl, { channels = [], noWebsocket = false, disconnectUrl } = {}) {
    const c = new ChannelStreamConnection();
    const rec = new Recorder(name);
    c.username = name;
    c.channels = channels;
    c.noWebsocket = noWebsocket;
    c.connectUrl = `${backendUrl}/connect`;
    c.subscribeUrl = `${backendUrl}/subscribe`;
    c.unsubscribeUrl = `${backendUrl}/unsubscribe`;
    c.userStateUrl = `${backendUrl}/user_state`;
    c.messageUrl = `${backendUrl}/message`;
    c.messageEditUrl = `${backendUrl}/message`;
    c.messageDeleteUrl = `${backendUrl}/message`;
    c.disconnectUrl = disconnectUrl || `${backendUrl}/disconnect`;
    c.websocketUrl = WS_URL;
    c.longPollUrl = `${CS_URL}/listen`;
    for (const [hook, kind] of Object.entries(HOOKS)) {
        c[hook] = (request, data) => {
            // (request, data) for XHR hooks; (data) for listenMessageCallback/channelsChanged
            if (kind === 'messages' || kind === 'channelsChanged') {
                const ev = rec.record(kind, request);
                if (kind === 'messages' && Array.isArray(request)) {
                    for (const item of request) rec.record('item', item);
                }
                return ev;
            }
            const status = request && typeof request.status === 'number' ? request.status : undefined;
            return rec.record(kind, data, status);
        };
    }
    return { c, rec };
}

/** Stop a client for good: no reconnects, socket/poll closed, heartbeat timer cleared. */
export function shutdown(c) {
    if (!c) return;
    c.shouldReconnect = false;
    try {
        c.closeConnection();
    } catch {
        // already closed
    }
    // ChannelStreamConnection never clears its 10 s heartbeat interval itself
    if (c._heartbeat !== undefined) clearInterval(c._heartbeat);
}

/** Start demo_backend.py; resolves with {url, proc}. */
export async function startBackend() {
    const proc = spawn(PYTHON, [BACKEND_PY, '--server', CS_URL, '--secret', CS_SECRET, '--port', '0'], {
        stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    const port = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('demo backend did not start in 10 s')), 10000);
        proc.on('exit', (code) => reject(new Error(`demo backend exited with ${code}`)));
        proc.stdout.on('data', (chunk) => {
            buf += chunk;
            const m = /LISTENING (\d+)/.exec(buf);
            if (m) {
                clearTimeout(timer);
                resolve(Number(m[1]));
            }
        });
    });
    return { url: `http://127.0.0.1:${port}`, proc };
}

export async function stopBackend(proc) {
    if (!proc || proc.exitCode !== null) return;
    proc.kill('SIGTERM');
    await once(proc, 'exit');
}

/** Direct server-API call signed with the JS client's own ChannelStreamSigner. */
export async function signedCall(pathname, body, { token } = {}) {
    const res = await fetch(CS_URL + pathname, {
        method: 'POST',
        headers: {
            'x-channelstream-secret': token ?? new ChannelStreamSigner(CS_SECRET).signRequest(),
            'Content-Type': 'application/json',
        },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return { status: res.status, json, text };
}

/** Resolve when `check()` returns a truthy value (polled, bounded); for server-side state. */
export async function until(label, check, { timeoutMs = 5000, everyMs = 100 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        last = await check();
        if (last) return last;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${label}`);
        await new Promise((r) => setTimeout(r, everyMs));
    }
}

/** Reject if `promise` has not settled after `ms` (the timer is cleared either way). */
export function withTimeout(promise, ms, label) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
