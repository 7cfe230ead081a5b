// Herald API explorer: lists every operation of /openapi.json (Swagger 2.0) with its
// parameters, request schema (references resolved) and responses, and sends a request with
// the admin session, showing the answer's status, headers and body.
'use strict';
(function () {
  const { el, fill, request, pretty } = window.Herald;
  const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'];
  let defs = {};

  /** The definition a `$ref` names (`#/definitions/X`). */
  function deref(s) {
    if (s && s.$ref) {
      const name = s.$ref.replace(/^#\/definitions\//, '');
      return { name, schema: defs[name] || {} };
    }
    return { name: null, schema: s || {} };
  }

  /** A readable tree of a schema, with references expanded (each at most once per path). */
  function schemaTree(s, path) {
    const { name, schema } = deref(s);
    if (name && path.includes(name)) return el('span', { class: 'muted' }, `${name} (recursive)`);
    const here = name ? [...path, name] : path;
    const label = name ? el('b', {}, name + ' ') : null;
    const type = schema.type || (schema.properties ? 'object' : schema.items ? 'array' : 'any');
    const notes = [];
    if (schema.format) notes.push(schema.format);
    if (schema.default !== undefined) notes.push(`default ${JSON.stringify(schema.default)}`);
    if (schema.enum) notes.push(`one of ${schema.enum.map((x) => JSON.stringify(x)).join(', ')}`);
    if (schema.minimum !== undefined) notes.push(`>= ${schema.minimum}`);
    if (schema.maximum !== undefined) notes.push(`<= ${schema.maximum}`);
    const head = el('span', {}, label, el('code', {}, type), notes.length ? el('span', { class: 'muted' }, ` (${notes.join('; ')})`) : null,
      schema.description ? el('span', { class: 'muted' }, ` - ${schema.description}`) : null);
    if (type === 'array' && schema.items) {
      return el('div', {}, head, el('div', { style: 'margin-left:16px' }, 'items: ', schemaTree(schema.items, here)));
    }
    if (schema.properties) {
      const req = new Set(schema.required || []);
      const rows = Object.entries(schema.properties).map(([k, v]) =>
        el('li', {}, el('code', {}, k), req.has(k) ? el('span', { class: 'error' }, ' *') : null, ': ', schemaTree(v, here)));
      return el('div', {}, head, el('ul', {}, rows));
    }
    if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      return el('div', {}, head, el('div', { style: 'margin-left:16px' }, 'values: ', schemaTree(schema.additionalProperties, here)));
    }
    return head;
  }

  /** An example value for a schema (defaults, else a placeholder of the right type). */
  function example(s, depth) {
    const { schema } = deref(s);
    if (depth > 4) return null;
    if (schema.example !== undefined) return schema.example;
    if (schema.default !== undefined) return schema.default;
    if (schema.enum) return schema.enum[0];
    const type = schema.type || (schema.properties ? 'object' : schema.items ? 'array' : null);
    switch (type) {
      case 'object': {
        const o = {};
        for (const [k, v] of Object.entries(schema.properties || {})) o[k] = example(v, depth + 1);
        return o;
      }
      case 'array': return schema.items ? [example(schema.items, depth + 1)] : [];
      case 'integer': case 'number': return 0;
      case 'boolean': return false;
      case 'string': return schema.format === 'uuid' ? '00000000-0000-0000-0000-000000000000' : 'string';
      default: return null;
    }
  }

  function answerView(r, ms) {
    const body = r.json !== undefined ? JSON.stringify(r.json, null, 2) : r.text;
    return el('div', { class: 'answer' },
      el('div', {}, 'Status ', el('b', { class: 'answer-status ' + (r.ok ? 'ok' : 'error') }, String(r.status)),
        el('span', { class: 'muted' }, ` in ${Math.round(ms)} ms`)),
      el('div', { class: 'muted' }, 'Headers'),
      el('pre', { class: 'answer-headers' }, r.headers.map(([k, v]) => `${k}: ${v}`).join('\n')),
      el('div', { class: 'muted' }, 'Body'),
      el('pre', { class: 'answer-body' }, body));
  }

  function operation(path, method, op) {
    const params = op.parameters || [];
    const bodyParam = params.find((p) => p.in === 'body');
    const queryParams = params.filter((p) => p.in === 'query');
    const hasBody = method !== 'get' && method !== 'head';
    const inputs = new Map();
    const form = el('form', { class: 'try' });
    for (const p of queryParams) {
      const i = el('input', { name: p.name, placeholder: p.type || 'string' });
      inputs.set(p.name, i);
      form.append(el('label', {}, `${p.name} (query${p.required ? ', required' : ''})`, i));
    }
    let textarea = null;
    if (hasBody) {
      const ex = bodyParam && bodyParam.schema ? example(bodyParam.schema, 0) : {};
      textarea = el('textarea', { name: 'body', rows: 6 });
      textarea.value = JSON.stringify(ex ?? {}, null, 2);
      form.append(el('label', {}, 'Request body (JSON)', textarea));
    }
    const out = el('div', { class: 'result' });
    form.append(el('button', { type: 'submit', class: 'send' }, 'Send'), out);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const [k, i] of inputs) if (i.value) q.set(k, i.value);
      const target = path.replace(/^\//, '') + (q.toString() ? '?' + q : '');
      fill(out, el('div', { class: 'muted' }, 'sending...'));
      const t0 = performance.now();
      try {
        const r = await request(method.toUpperCase(), target, textarea ? textarea.value : undefined);
        fill(out, answerView(r, performance.now() - t0));
      } catch (e) {
        fill(out, el('div', { class: 'error' }, String(e.message || e)));
      }
    });
    const responses = Object.entries(op.responses || {}).sort(([a], [b]) => a.localeCompare(b)).map(([code, r]) =>
      el('li', {}, el('code', {}, code), ' ', r.description || '', r.schema ? schemaTree(r.schema, []) : null));
    const id = `op-${method}-${path.replace(/[^a-z0-9]+/gi, '-')}`.replace(/-+$/, '');
    return el('details', { class: 'op', id, 'data-path': path, 'data-method': method },
      el('summary', {}, el('span', { class: 'method ' + method }, method), el('code', {}, path),
        el('span', { class: 'muted' }, op.summary || '')),
      el('div', { class: 'body' },
        op.description ? el('p', {}, op.description) : null,
        el('h3', {}, 'Request'),
        bodyParam && bodyParam.schema ? el('div', { class: 'schema' }, schemaTree(bodyParam.schema, [])) :
          el('p', { class: 'muted' }, queryParams.length ? 'query parameters only' : 'no body'),
        queryParams.length ? el('ul', {}, queryParams.map((p) => el('li', {}, el('code', {}, p.name), ` (${p.type || 'string'}) ${p.description || ''}`))) : null,
        el('h3', {}, 'Responses'),
        el('ul', { class: 'responses' }, responses),
        el('h3', {}, 'Try it'),
        form));
  }

  async function load() {
    const r = await request('GET', 'openapi.json');
    if (!r.json) {
      fill(document.getElementById('ops'), el('p', { class: 'error' }, `openapi.json: ${r.status} ${pretty(r.text)}`));
      return;
    }
    const doc = r.json;
    defs = doc.definitions || {};
    document.getElementById('api-title').textContent = `${doc.info?.title || ''} ${doc.info?.version || ''} (swagger ${doc.swagger || '?'})`;
    const ops = [];
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const m of METHODS) if (item[m]) ops.push(operation(path, m, item[m]));
    }
    fill(document.getElementById('ops'), ops);
    document.body.dataset.ready = '1';
  }

  load();
})();
