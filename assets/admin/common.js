// Herald admin: helpers shared by the dashboard and the API explorer (no framework).
// Every request goes to this server with the admin session: the auth_tkt cookie plus the
// X-Herald-Admin header, which lets the server API accept the cookie instead of a signature.
'use strict';
(function () {
  const SIGN_IN = 'admin/sign_in';

  /** Build an element: el('td', {class: 'num'}, 'text', childNode, ...). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  /** Replace the children of `node` with `children`. */
  function fill(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null));
  }

  /**
   * One request with the admin session. `path` is relative to the server root ('info',
   * 'admin/admin.json'); `body` (if any) is sent as is when a string, else as JSON.
   * Resolves to {status, ok, headers: [[k, v]], text, json (or undefined)}.
   * When the session is gone (the server redirected to the sign-in page) the browser goes
   * there, and the promise rejects.
   */
  async function request(method, path, body) {
    const init = {
      method,
      credentials: 'same-origin',
      headers: { 'X-Herald-Admin': '1' },
      cache: 'no-store',
    };
    if (body !== undefined && method !== 'GET' && method !== 'HEAD') {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    const r = await fetch(new URL(path, root()), init);
    if (r.redirected && new URL(r.url).pathname.endsWith('/' + SIGN_IN)) {
      window.location.assign(r.url);
      throw new Error('signed out');
    }
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch (_) { json = undefined; }
    return { status: r.status, ok: r.ok, headers: [...r.headers.entries()], text, json };
  }

  /** The server root as seen by the page (works behind an X-Script-Name prefix). */
  function root() {
    const u = new URL(window.location.href);
    u.search = '';
    u.hash = '';
    u.pathname = u.pathname.replace(/(admin|api-explorer)\/?$/, '');
    return u;
  }

  /** Prometheus text format to {name: number} (labels are kept in the name). */
  function parseMetrics(text) {
    const out = {};
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      if (i > 0) out[line.slice(0, i)] = Number(line.slice(i + 1));
    }
    return out;
  }

  /** The HELP lines of a Prometheus text: {name: help}. */
  function metricHelp(text) {
    const out = {};
    for (const line of text.split('\n')) {
      const m = /^# HELP (\S+) (.*)$/.exec(line);
      if (m) out[m[1]] = m[2];
    }
    return out;
  }

  /** Pretty JSON for display; strings that are not JSON are returned unchanged. */
  function pretty(v) {
    return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
  }

  window.Herald = { el, fill, request, root, parseMetrics, metricHelp, pretty };
})();
