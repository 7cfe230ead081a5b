// Herald admin dashboard: polls admin/admin.json, admin/connections.json and /metrics every
// second with the admin session and renders channels, users, connections by transport,
// message rates (computed here from the counters' deltas), limit counters and a live feed of
// new history messages. The two forms publish a message and change a channel's config
// through the server API with the admin session.
'use strict';
(function () {
  const { el, fill, request, parseMetrics, metricHelp, pretty } = window.Herald;
  const POLL_MS = 1000;
  const FEED_MAX = 100;
  const $ = (id) => document.getElementById(id);

  let prev = null; // {t, unique, deliveries}
  const seen = new Set(); // history message uuids already in the feed
  let first = true;

  const TILES = [
    ['users', 'users connected / remembered'],
    ['conns', 'connections'],
    ['ws', 'websocket'],
    ['lp', 'long poll'],
    ['idle', 'no transport'],
    ['channels', 'channels'],
    ['rate-in', 'messages in / s'],
    ['rate-out', 'deliveries out / s'],
    ['msgs', 'messages (unique)'],
    ['deliveries', 'deliveries'],
    ['tcp', 'open TCP connections'],
  ];
  fill($('tiles'), TILES.map(([id, k]) =>
    el('div', { class: 'tile', id: 'tile-' + id }, el('div', { class: 'v' }, '-'), el('div', { class: 'k' }, k))));

  function tile(id, v, alert) {
    const t = $('tile-' + id);
    t.querySelector('.v').textContent = v;
    t.classList.toggle('alert', !!alert);
  }

  function rate(x) {
    return x < 10 ? x.toFixed(1) : Math.round(x).toString();
  }

  function renderChannels(channels) {
    const rows = Object.values(channels || {}).map((c) => {
      const s = c.settings || {};
      const flags = Object.entries(s)
        .filter(([k, v]) => k !== 'history_size' && v === true)
        .map(([k]) => el('span', { class: 'pill' }, k));
      const hist = s.store_history
        ? `${(c.history || []).length} / ${s.history_size}`
        : el('span', { class: 'pill off' }, 'off');
      return el('tr', { 'data-channel': c.name },
        el('td', {}, el('b', {}, c.name), c.long_name ? el('div', { class: 'muted' }, c.long_name) : null),
        el('td', { class: 'subscribers' }, (c.users || []).map((u) => el('span', { class: 'pill' }, u))),
        el('td', { class: 'num' }, c.total_connections),
        el('td', { class: 'history' }, hist),
        el('td', { class: 'config', 'data-config': JSON.stringify(s) }, flags.length ? flags : el('span', { class: 'muted' }, 'defaults'),
          el('span', { class: 'muted' }, ` history_size=${s.history_size}`)),
        el('td', { class: 'mono' }, c.last_active || ''));
    });
    fill($('channels').tBodies[0], rows.length ? rows : el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'no channels')));
  }

  function renderUsers(users, transports) {
    const rows = (users || []).map((u) => el('tr', { 'data-user': u.user },
      el('td', {}, el('b', {}, u.user)),
      el('td', {}, el('code', {}, JSON.stringify(u.state))),
      el('td', {}, (u.connections || []).map((id) => {
        const t = transports.get(id) || 'none';
        return el('span', { class: 'pill ' + t, title: id, 'data-conn-id': id, 'data-transport': t },
          `${id.slice(0, 8)} ${t.replace('_', ' ')}`);
      }))));
    fill($('users').tBodies[0], rows.length ? rows : el('tr', {}, el('td', { colspan: 3, class: 'muted' }, 'no connected users')));
  }

  function renderFeed(channels) {
    const fresh = [];
    for (const c of Object.values(channels || {})) {
      for (const m of c.history || []) {
        if (!seen.has(m.uuid)) {
          seen.add(m.uuid);
          fresh.push(m);
        }
      }
    }
    fresh.sort((a, b) => String(a.timestamp).localeCompare(String(b.timestamp)));
    const feed = $('feed');
    for (const m of fresh) {
      feed.prepend(el('li', { 'data-uuid': m.uuid, 'data-channel': m.channel, class: first ? '' : 'new' },
        el('span', { class: 'mono muted' }, String(m.timestamp).slice(11, 19), ' '),
        el('span', { class: 'pill' }, m.channel), ' ',
        el('b', {}, m.user || ''), ': ',
        el('code', { class: 'msg' }, JSON.stringify(m.message))));
    }
    while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
    if (!feed.children.length) feed.append(el('li', { class: 'muted empty' }, 'nothing yet'));
    else feed.querySelectorAll('li.empty').forEach((e) => e.remove());
  }

  function renderLimits(values, help) {
    const rows = Object.entries(values)
      .filter(([k]) => k.startsWith('herald_') && k !== 'herald_connections_open' && k !== 'herald_shards')
      .map(([k, v]) => {
        const bad = v > 0 && /refused|errors|timeouts|full|slow/.test(k);
        return el('tr', { 'data-metric': k, class: bad ? 'error' : '' },
          el('td', { class: 'mono' }, k), el('td', { class: 'num' }, v), el('td', { class: 'muted' }, help[k] || ''));
      });
    fill($('limits').tBodies[0], rows);
  }

  async function poll() {
    try {
      const [admin, conns, metrics] = await Promise.all([
        request('GET', 'admin/admin.json'),
        request('GET', 'admin/connections.json'),
        request('GET', 'metrics'),
      ]);
      if (!admin.json) throw new Error(`admin.json: ${admin.status}`);
      const a = admin.json;
      const c = conns.json || { connections: [], by_transport: {} };
      const m = parseMetrics(metrics.text || '');
      const t = performance.now();
      $('version').textContent = a.version;
      $('uptime').textContent = a.uptime;
      tile('users', `${a.unique_user_count} / ${a.remembered_user_count}`);
      tile('conns', a.total_connections);
      tile('ws', c.by_transport.websocket || 0);
      tile('lp', c.by_transport.long_poll || 0);
      tile('idle', (c.by_transport.none || 0) + (c.by_transport.closed || 0));
      tile('channels', a.total_channels);
      tile('msgs', a.total_unique_messages);
      tile('deliveries', a.total_messages);
      tile('tcp', m.herald_connections_open ?? '-');
      if (prev) {
        const dt = (t - prev.t) / 1000;
        tile('rate-in', rate(Math.max(0, a.total_unique_messages - prev.unique) / dt));
        tile('rate-out', rate(Math.max(0, a.total_messages - prev.deliveries) / dt));
      }
      prev = { t, unique: a.total_unique_messages, deliveries: a.total_messages };
      renderChannels(a.channels);
      renderUsers(a.users, new Map(c.connections.map((x) => [x.conn_id, x.transport])));
      renderFeed(a.channels);
      renderLimits(m, metricHelp(metrics.text || ''));
      first = false;
      const s = $('poll-status');
      s.textContent = 'live';
      s.className = 'ok';
      document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
    } catch (e) {
      const s = $('poll-status');
      s.textContent = 'error: ' + e.message;
      s.className = 'error';
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  function show(node, r, what) {
    node.textContent = `${r.status} ${r.ok ? 'OK' : 'error'}: ${what(r)}`;
    node.className = 'status ' + (r.ok ? 'ok' : 'bad');
  }

  $('publish-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    const raw = f.message.value;
    let message;
    try { message = JSON.parse(raw); } catch (_) { message = { text: raw }; }
    const item = { channel: f.channel.value.trim(), message };
    if (f.user.value.trim()) item.user = f.user.value.trim();
    try {
      const r = await request('POST', 'message', [item]);
      show($('pub-status'), r, (x) => (x.ok && x.json ? `published ${x.json[0].uuid}` : pretty(x.json ?? x.text)));
    } catch (e) {
      $('pub-status').textContent = e.message;
    }
  });

  $('config-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    const name = f.channel.value.trim();
    const cfg = {};
    for (const k of ['notify_presence', 'store_history', 'broadcast_presence_with_user_lists', 'notify_state', 'store_frames']) {
      cfg[k] = f[k].checked;
    }
    cfg.history_size = Number(f.history_size.value);
    try {
      const r = await request('POST', 'channel_config', { [name]: cfg });
      show($('cfg-status'), r, (x) => (x.ok ? `${name} configured` : pretty(x.json ?? x.text)));
    } catch (e) {
      $('cfg-status').textContent = e.message;
    }
  });

  // Clicking a channel row fills both forms with it (and its current config).
  $('channels').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr[data-channel]');
    if (!tr) return;
    $('pub-channel').value = tr.dataset.channel;
    $('cfg-channel').value = tr.dataset.channel;
    const s = JSON.parse(tr.querySelector('.config').dataset.config || '{}');
    const f = $('config-form').elements;
    for (const [k, v] of Object.entries(s)) {
      if (typeof v === 'boolean' && f[k]) f[k].checked = v;
    }
    if (s.history_size !== undefined) f.history_size.value = s.history_size;
  });

  poll();
})();
