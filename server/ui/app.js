// simtrack web UI: one page, hash-routed, talking only to the server's
// token-authenticated API. No framework and no build step: `h()` builds DOM
// nodes (text always goes through textContent, so names and metadata can
// never inject markup), each page is a function that renders into <main>
// and registers its timers/observers for cleanup when the route changes.
'use strict';
(() => {
  const TOKEN_KEY = 'simtrack.token';
  const POLL_MS = 2000;
  const PAGE_SIZE = 50;
  const EAGER_CHARTS = 60;
  const LEVELS = ['debug', 'info', 'warning', 'error', 'critical'];
  const STATUSES = ['created', 'running', 'completed', 'failed', 'terminated', 'lost'];
  const LIVE = new Set(['created', 'running', 'lost']);
  const COLORS = ['#1f6feb', '#d1242f', '#2e7d32', '#8e24aa', '#ef6c00', '#00838f', '#6d4c41', '#c2185b', '#5c6bc0', '#7cb342'];
  // Past the ten named colours, hues step by the golden angle and lightness
  // alternates, so 50 runs still get 50 distinguishable lines.
  const colour = (i) => (i < COLORS.length ? COLORS[i] : `hsl(${Math.round((i * 137.508) % 360)}, 70%, ${i % 2 ? 38 : 52}%)`);

  // A continuous colour scale (dark blue → purple → orange), readable on
  // light and dark backgrounds; t in 0..1.
  const RAMP = [[33, 49, 140], [110, 40, 160], [190, 60, 110], [230, 110, 40], [215, 160, 0]];
  function ramp(t) {
    const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1), i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
    const c = RAMP[i].map((v, j) => Math.round(v + (RAMP[i + 1][j] - v) * f));
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  }
  const main = document.getElementById('main');
  // Hooks for tests and benchmarks: the charts on screen and timing marks.
  const hooks = (window.__simtrack = { charts: new Map(), marks: {}, route: '' });
  let cleanups = [];
  let user = null;

  // ---------- helpers ----------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const clear = (el) => { el.replaceChildren(); return el; };
  const token = () => localStorage.getItem(TOKEN_KEY) || sessionStorage.getItem(TOKEN_KEY);
  const onCleanup = (f) => cleanups.push(f);
  // Calls f every ms while the tab is visible and `view` is on screen.
  function every(view, ms, f) {
    let stopped = false, t = null;
    const tick = async () => {
      if (stopped || !view.isConnected) return;
      if (!document.hidden) { try { await f(); } catch (e) { console.warn(e); } }
      if (!stopped) t = setTimeout(tick, ms);
    };
    t = setTimeout(tick, ms);
    onCleanup(() => { stopped = true; clearTimeout(t); });
  }
  function debounce(f, ms) {
    let t = null;
    return (...a) => { clearTimeout(t); t = setTimeout(() => f(...a), ms); };
  }
  const listParam = (a) => JSON.stringify(a);
  function qs(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === '') continue;
      u.set(k, Array.isArray(v) ? listParam(v) : String(v));
    }
    return u.toString();
  }

  // Outside JSON strings, the bare tokens NaN/Infinity/-Infinity become strings.
  const quoteNonFinite = (text) => text.replace(/"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)/g, (m, t) => (t ? '"' + t + '"' : m));
  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }
  // Signed in with a password, the session is an HttpOnly cookie the
  // browser sends itself; writes carry the session's CSRF token.
  async function api(path, opts = {}) {
    const headers = {};
    if (token()) headers.Authorization = 'Bearer ' + token();
    else if (user && user.csrf && (opts.method || 'GET') !== 'GET') headers['X-CSRF-Token'] = user.csrf;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method: opts.method || 'GET', headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: 'no-store',
    });
    const text = await r.text();
    if (r.status === 401 && !opts.noSignOut) { signOut('Your session has ended: sign in again.'); throw new ApiError(401, 'unauthorized'); }
    // Metric values may be NaN/Infinity, which JSON cannot spell: they
    // become the strings "NaN", "Infinity", "-Infinity" (see num()).
    const body = text ? JSON.parse(/NaN|Infinity/.test(text) ? quoteNonFinite(text) : text) : null;
    if (!r.ok) throw new ApiError(r.status, (body && body.detail) || r.statusText);
    return body;
  }

  const parseTs = (s) => (s ? Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : s + 'Z') : NaN);
  const pad = (n) => String(n).padStart(2, '0');
  function fmtTime(s) {
    const t = parseTs(s);
    if (!Number.isFinite(t)) return '';
    const d = new Date(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtDuration(runtime) {
    if (!runtime) return '';
    const m = /^(\d+):(\d\d):(\d\d)(?:\.(\d+))?$/.exec(runtime);
    if (!m) return runtime;
    const s = +m[1] * 3600 + +m[2] * 60 + +m[3] + (m[4] ? +('0.' + m[4]) : 0);
    if (s < 60) return s.toFixed(1) + ' s';
    if (s < 3600) return `${Math.floor(s / 60)} min ${pad(Math.floor(s % 60))} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }
  // A metric value from the API: a number, or "NaN"/"Infinity"/"-Infinity".
  const num = (v) => (typeof v === 'string' && /^(-?Infinity|NaN)$/.test(v) ? Number(v) : v);
  function fmtNum(v) {
    if (v === null || v === undefined) return '';
    v = num(v);
    if (typeof v !== 'number') return String(v);
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? 'Inf' : '-Inf';
    if (v === 0 || (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6)) return String(+v.toPrecision(6));
    return v.toExponential(4);
  }
  function fmtBytes(n) {
    if (n < 1024) return n + ' B';
    const u = ['KiB', 'MiB', 'GiB', 'TiB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(1) + ' ' + u[i];
  }
  const fmtValue = (v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v === null ? 'null' : String(v));
  const badge = (status) => h('span', { class: 'badge ' + status, 'data-testid': 'status' }, status);
  const tags = (list) => (list || []).map((t) => h('span', { class: 'tag' }, t));
  function kvTable(obj, empty) {
    const keys = Object.keys(obj || {}).sort();
    if (!keys.length) return h('p', { class: 'muted' }, empty || 'None.');
    return h('table', { class: 'kv' }, h('tbody', {}, keys.map((k) => h('tr', {}, h('td', {}, k), h('td', { class: 'mono' }, fmtValue(obj[k]))))));
  }
  async function copy(text, btn) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const ta = h('textarea', { style: 'position:fixed;opacity:0' }, text);
      document.body.append(ta); ta.select(); document.execCommand('copy'); ta.remove();
    }
    const old = btn.textContent;
    btn.textContent = 'Copied';
    setTimeout(() => { btn.textContent = old; }, 1200);
  }
  function showError(where, e) {
    if (e instanceof ApiError && e.status === 401) return;
    where.append(h('p', { class: 'error', role: 'alert' }, String(e.message || e)));
  }

  // ---------- routing ----------
  function parseRoute() {
    const raw = location.hash.replace(/^#\/?/, '');
    const [path, query] = raw.split('?');
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    return { page: parts[0] || 'runs', arg: parts[1], params: new URLSearchParams(query || '') };
  }
  // `push`: a step the Back button should undo (a menu choice, a sort, a
  // page); typing only replaces the current entry.
  function setQuery(params, push) {
    const r = parseRoute();
    const base = '#/' + r.page + (r.arg ? '/' + encodeURIComponent(r.arg) : '');
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined && v !== false) q.set(k, v);
    const next = base + (q.toString() ? '?' + q : '');
    if (push && next !== location.hash) history.pushState(null, '', next);
    else history.replaceState(null, '', next);
  }
  const PAGES = { runs: runsPage, run: runPage, compare: comparePage, folders: foldersPage, new: newRunPage }; // + pages/*.js

  async function route() {
    for (const f of cleanups.splice(0)) { try { f(); } catch (e) { console.warn(e); } }
    hooks.charts.clear();
    hooks.marks = {};
    hooks.notFound = null;
    // Each route renders into its own view: a page still loading when the
    // user moves on finds its view detached and draws nothing into the next.
    const view = h('div', { class: 'view' });
    main.replaceChildren(view);
    if (!user) {
      // The token this answer is about: one stored while the request was
      // out (a sign-in in another tab, a test) must not be signed out by
      // the answer to the request made without it.
      const asked = token();
      try { user = await api('/api/ui/whoami', { noSignOut: true }); } catch (e) {
        if (!view.isConnected) return; // a newer route took over
        if (e.status === 401 && token() !== asked) return queueRoute();
        if (e.status === 401 && !asked) return signInPage(view);
        if (e.status === 401) return signOut('That token is not valid (anymore): sign in again.');
        return showError(view, e);
      }
      if (!view.isConnected) return;
    }
    document.getElementById('nav').hidden = false;
    document.getElementById('signout').hidden = false;
    document.getElementById('whoami').textContent = user.user;
    const r = parseRoute();
    hooks.route = r.page;
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === r.page);
    const page = PAGES[r.page];
    if (!page) return notFound(view, 'Page not found', `There is no page "${r.page}" in simtrack.`);
    try { await page(r, view); } catch (e) { showError(view, e); }
  }
  // What a page shows for something that does not exist (or that this
  // user may not see: the server answers 404 for both).
  function notFound(view, title, text) {
    hooks.notFound = title;
    document.title = title + ' · simtrack';
    view.append(h('div', { class: 'panel not-found', id: 'not-found' }, h('h1', {}, title), h('p', {}, text),
      h('p', { class: 'row' }, h('a', { class: 'button primary', href: '#/runs' }, 'Go to the runs'), h('a', { class: 'button', href: '#/folders' }, 'Browse folders'))));
  }
  function signOut(message) {
    // A password session ends on the server first, so the next page does
    // not find it still signed in.
    const ending = user && user.session
      ? fetch('/api/ui/signout', { method: 'POST', headers: { 'X-CSRF-Token': user.csrf } }).catch(() => {})
      : Promise.resolve();
    localStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
    user = null;
    ending.then(() => route()).then(() => {
      if (message) { const f = main.querySelector('form'); if (f) f.prepend(h('p', { class: 'error', role: 'alert' }, message)); }
    });
  }
  document.getElementById('signout').addEventListener('click', () => signOut());
  // Back/forward between entries made by pushState fire popstate (and, when
  // the fragment differs, hashchange too): one re-render either way.
  let routeQueued = false;
  const queueRoute = () => { if (routeQueued) return; routeQueued = true; setTimeout(() => { routeQueued = false; route(); }, 0); };
  window.addEventListener('hashchange', queueRoute);
  window.addEventListener('popstate', queueRoute);

  // ---------- sign-in ----------
  function signInPage(view) {
    document.getElementById('nav').hidden = true;
    document.getElementById('signout').hidden = true;
    document.getElementById('whoami').textContent = '';
    const input = h('textarea', { id: 'token', name: 'token', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'eyJhbGciOi…' });
    const remember = h('input', { type: 'checkbox', id: 'remember', checked: true });
    const msg = h('div', { role: 'status' });
    const name = h('input', { id: 'signin-user', name: 'username', required: true, autocomplete: 'username' });
    const pw = h('input', { id: 'signin-password', name: 'password', type: 'password', required: true, autocomplete: 'current-password' });
    const pmsg = h('div', { role: 'status' });
    const pform = h('form', { class: 'panel signin', id: 'signin-password-form' },
      h('h1', {}, 'Sign in to simtrack'),
      h('label', { for: 'signin-user' }, 'User name'), name,
      h('label', { for: 'signin-password' }, 'Password'), pw,
      h('div', { class: 'row' }, h('span', { class: 'grow' }), h('button', { class: 'primary', type: 'submit', id: 'signin-submit' }, 'Sign in')),
      pmsg);
    pform.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clear(pmsg);
      const r = await fetch('/api/ui/signin', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user: name.value.trim(), password: pw.value }) });
      pw.value = '';
      if (!r.ok) {
        const d = await r.json().catch(() => ({}));
        pmsg.append(h('p', { class: 'error', role: 'alert' }, r.status === 429 ? 'Too many failed sign-ins: try again later.' : (d.detail || 'Sign-in failed.')));
        return;
      }
      user = await api('/api/ui/whoami', { noSignOut: true });
      if (!location.hash || location.hash === '#/' || location.hash.startsWith('#/signin')) location.hash = '#/runs';
      else route();
    });
    const form = h('form', { class: 'panel signin', id: 'signin' },
      h('h2', {}, '…or with an API token'),
      h('label', { for: 'token' }, 'API token'), input,
      h('p', { class: 'muted' }, 'Ask your admin for a token, or create one on the server with ', h('code', {}, 'simtrack token create --data DIR'), '.'),
      h('div', { class: 'row' }, h('label', {}, remember, ' Remember me on this computer'), h('span', { class: 'grow' }), h('button', { class: 'primary', type: 'submit' }, 'Sign in')),
      msg);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const t = input.value.trim();
      clear(msg);
      if (!t) return;
      (remember.checked ? localStorage : sessionStorage).setItem(TOKEN_KEY, t);
      try {
        user = await api('/api/ui/whoami', { noSignOut: true });
      } catch (e) {
        localStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem(TOKEN_KEY);
        msg.append(h('p', { class: 'error', role: 'alert' }, e.status === 401 ? 'That token is not valid.' : String(e.message)));
        return;
      }
      if (!location.hash || location.hash === '#/' || location.hash.startsWith('#/signin')) location.hash = '#/runs';
      else route();
    });
    view.append(pform, form);
    name.focus();
  }

  // ---------- runs ----------
  function runFilters(f) {
    const out = [];
    if (f.status) out.push('status == ' + f.status);
    // A folder and everything below it (`/cfd` finds `/cfd/airfoil`).
    if (f.folder.trim()) out.push('folder.path under ' + (f.folder.trim().replace(/\/+$/, '') || '/'));
    for (const t of (f.tag || '').split(',').map((s) => s.trim()).filter(Boolean)) out.push('has tag.' + t);
    for (const m of (f.meta || '').split(';').map((s) => s.trim()).filter(Boolean)) {
      const x = /^(?:metadata\.)?([^\s=<>!]+)\s*(==|!=|>=|<=|>|<|=|not contains|contains|not exists|exists)\s*(.*)$/.exec(m);
      if (!x) throw new Error(`metadata filter "${m}" is not "key op value" (op: == != > < >= <= contains exists)`);
      const op = x[2] === '=' ? '==' : x[2];
      // "Euler" and 'Euler' mean the value Euler.
      const v = x[3].trim().replace(/^(["'])(.*)\1$/, '$2');
      out.push(`metadata.${x[1]} ${op}${op.endsWith('exists') ? '' : ' ' + v}`);
    }
    if (f.q.trim()) out.push('name icontains ' + f.q.trim());
    // Archived runs stay out of the table unless asked for.
    if (!f.archived) out.push('has not tag.' + ARCHIVED);
    return out;
  }

  // Archiving a run tags it `archived`: it leaves the default runs table
  // and keeps all its data (the simvue client sees the tag as any other).
  const ARCHIVED = 'archived';
  async function setArchived(ids, on) {
    for (const i of ids) {
      const run = await api('/api/runs/' + encodeURIComponent(i));
      const tags = (run.tags || []).filter((t) => t !== ARCHIVED);
      if (on) tags.push(ARCHIVED);
      await api('/api/runs/' + encodeURIComponent(i), { method: 'PUT', body: { tags } });
    }
  }

  // Deletes runs after a confirmation that says what goes: points, events, files.
  async function deleteRuns(ids) {
    const docs = await Promise.all(ids.map((i) => api('/api/runs/' + encodeURIComponent(i))));
    const evs = await Promise.all(ids.map((i) => api('/api/events?' + qs({ run: i, count: 1 })).then((r) => r.count || 0).catch(() => 0)));
    const files = await Promise.all(ids.map((i) => api(`/api/runs/${encodeURIComponent(i)}/artifacts`).catch(() => [])));
    const points = docs.reduce((n, d) => n + Object.values(d.metrics || {}).reduce((a, m) => a + (m.count || 0), 0), 0);
    const nfiles = files.reduce((n, f) => n + f.length, 0);
    const bytes = files.reduce((n, f) => n + f.reduce((a, x) => a + (x.size || 0), 0), 0);
    const what = ids.length === 1 ? `run "${docs[0].name}"` : `${ids.length} runs`;
    if (!confirm(`Delete ${what}? This removes ${points} metric points, ${evs.reduce((a, b) => a + b, 0)} events and ${nfiles} file record${nfiles === 1 ? '' : 's'} (${fmtBytes(bytes)}), for good.`)) return false;
    for (const i of ids) await api('/api/runs/' + encodeURIComponent(i), { method: 'DELETE' });
    return true;
  }

  const fmtCsvNum = (v) => { v = num(v); return typeof v === 'number' ? (Number.isNaN(v) ? 'NaN' : Number.isFinite(v) ? String(v) : v > 0 ? 'Inf' : '-Inf') : ''; };
  const csvCell = (v) => { const t = v === null || v === undefined ? '' : String(v); return /[",\n\r]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t; };
  const VIEWS_KEY = 'simtrack.views';
  const loadViews = () => { try { return JSON.parse(localStorage.getItem(VIEWS_KEY) || '{}'); } catch { return {}; } };

  async function runsPage(r, view) {
    const p = r.params;
    const f = {
      status: p.get('status') || '', folder: p.get('folder') || '', tag: p.get('tag') || '', meta: p.get('meta') || '',
      q: p.get('q') || '', where: p.get('where') || '', sort: p.get('sort') || 'created', desc: p.get('desc') !== '0', page: +(p.get('page') || 0),
      cols: p.get('cols') ?? (localStorage.getItem('simtrack.cols') || ''), mcols: p.get('mcols') || '', stat: p.get('stat') || 'last',
      size: [25, 50, 100, 200].includes(+p.get('size')) ? +p.get('size') : PAGE_SIZE,
      archived: p.get('archived') === '1',
    };
    const selected = new Set();
    const field = (label, el) => h('label', { class: 'field' }, label, el);
    const statusSel = h('select', { id: 'f-status' }, h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s }, s)));
    statusSel.value = f.status;
    const metaList = h('datalist', { id: 'meta-keys' });
    const metricList = h('datalist', { id: 'metric-names' });
    const inputs = {
      folder: h('input', { id: 'f-folder', value: f.folder, placeholder: '/project/case' }),
      tag: h('input', { id: 'f-tag', value: f.tag, placeholder: 'cfd, test' }),
      meta: h('input', { id: 'f-meta', value: f.meta, placeholder: 'nx == 64; alpha > 0.1' }),
      q: h('input', { id: 'f-text', value: f.q, placeholder: 'name contains…', type: 'search' }),
      cols: h('input', { id: 'f-cols', value: f.cols, placeholder: 'residual, energy', list: 'metric-names' }),
      mcols: h('input', { id: 'f-mcols', value: f.mcols, placeholder: 'nx, solver', list: 'meta-keys' }),
      where: h('input', { id: 'f-where', value: f.where, placeholder: 'status == running AND (metadata.nx > 64 OR NOT has tag.test)', class: 'mono' }),
    };
    const statSel = h('select', { id: 'f-stat' }, ['last', 'min', 'max'].map((s) => h('option', { value: s }, s)));
    statSel.value = f.stat;
    const compareBtn = h('button', { type: 'button', id: 'compare-selected', disabled: true, onclick: () => { location.hash = '#/compare?ids=' + [...selected].join(','); } }, 'Compare selected');
    const exportBtn = h('button', { type: 'button', id: 'export-csv' }, 'Export CSV');
    const deleteBtn = h('button', { type: 'button', id: 'delete-selected', class: 'danger', disabled: true, onclick: async () => {
      try {
        if (!(await deleteRuns([...selected]))) return;
        selected.clear(); updateSel(); lastJson = '';
        await load(false);
      } catch (e) { showError(clear(msg), e); }
    } }, 'Delete selected');
    const archiveBtn = h('button', { type: 'button', id: 'archive-selected', disabled: true, onclick: async () => {
      const on = !f.archived || ![...selected].every((i) => archivedIds.has(i));
      try {
        await setArchived([...selected], on);
        selected.clear(); updateSel(); lastJson = '';
        await load(false);
      } catch (e) { showError(clear(msg), e); }
    } }, 'Archive selected');
    const archivedBox = h('input', { type: 'checkbox', id: 'f-archived', checked: f.archived, onchange: () => { f.archived = archivedBox.checked; changed(true); } });
    const archivedIds = new Set();
    const countEl = h('span', { class: 'muted', id: 'runs-count' });
    const msg = h('div', { id: 'runs-msg' });
    const table = h('table', { id: 'runs' });
    const prev = h('button', { type: 'button', id: 'prev-page', onclick: () => { f.page--; changed(false); } }, '← Previous');
    const next = h('button', { type: 'button', id: 'next-page', onclick: () => { f.page++; changed(false); } }, 'Next →');
    const pageEl = h('span', { class: 'muted' });
    const jump = h('input', { id: 'page-jump', type: 'number', min: 1, style: 'width:5em', 'aria-label': 'go to page' });
    const sizeSel = h('select', { id: 'page-size', 'aria-label': 'runs per page' }, [25, 50, 100, 200].map((n) => h('option', { value: n }, `${n} per page`)));
    sizeSel.value = String(f.size);
    const viewSel = h('select', { id: 'views', 'aria-label': 'saved views' });
    const viewName = h('input', { id: 'view-name', placeholder: 'name this view', style: 'width:10em' });
    const saveViewBtn = h('button', { type: 'button', id: 'save-view' }, 'Save view');
    function renderViews() {
      const views = loadViews();
      clear(viewSel).append(h('option', { value: '' }, 'saved views…'), ...Object.keys(views).sort().map((n) => h('option', { value: n }, n)));
    }
    renderViews();
    viewSel.addEventListener('change', () => {
      const v = loadViews()[viewSel.value];
      if (v === undefined) return;
      const target = '#/runs' + (v ? '?' + v : '');
      if (location.hash === target) route(); else location.hash = target;
    });
    saveViewBtn.addEventListener('click', () => {
      const name = viewName.value.trim();
      if (!name) { viewName.focus(); return; }
      const views = loadViews();
      views[name] = (location.hash.split('?')[1] || '');
      localStorage.setItem(VIEWS_KEY, JSON.stringify(views));
      viewName.value = '';
      renderViews();
      viewSel.value = name;
    });
    view.append(
      h('div', { class: 'row' }, h('h1', { class: 'grow' }, 'Runs'), viewSel, viewName, saveViewBtn, exportBtn, archiveBtn, deleteBtn, compareBtn),
      h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
        field('Status', statusSel), field('Folder (and below)', inputs.folder), field('Tags (all of)', inputs.tag),
        field('Metadata (key op value; …)', inputs.meta), field('Search names', inputs.q),
        field('Metadata columns', inputs.mcols), field('Metric columns', inputs.cols), field('Metric value', statSel), h('label', { class: 'field' }, 'Archived', h('span', {}, archivedBox, ' show archived runs'))),
      h('label', { class: 'field wide' }, 'Filter (status, name, folder.path, metadata.*, has tag.*, with AND, OR, NOT, parentheses, "quoted values")', inputs.where),
      metaList, metricList,
      msg, h('div', { class: 'table-wrap' }, table),
      h('div', { class: 'pager' }, prev, pageEl, next, h('label', { class: 'muted' }, 'page ', jump), sizeSel, h('span', { class: 'grow' }), countEl));

    const split = (t) => t.split(',').map((x) => x.trim()).filter(Boolean);
    const params = (start, count) => {
      const metricCols = split(f.cols).slice(0, 100);
      return qs({ filters: runFilters(f), where: f.where.trim(), start, count, sorting: [{ id: f.sort, desc: f.desc }], metrics: metricCols });
    };
    let lastJson = '';
    let seq = 0;
    let namesFor = '';
    async function load(first) {
      const mine = ++seq;
      let query;
      try { query = params(f.page * f.size, f.size); } catch (e) { clear(msg).append(h('p', { class: 'error', id: 'filter-error' }, e.message)); return; }
      const t0 = performance.now();
      let res;
      try { res = await api('/api/ui/runs?' + query); } catch (e) {
        if (mine !== seq) return;
        // A filter the server cannot read says why, where it was typed.
        if (e.status === 422 || e.status === 400) { lastJson = ''; clear(msg).append(h('p', { class: 'error', id: 'filter-error', role: 'alert' }, 'Filter: ' + e.message)); return; }
        throw e;
      }
      if (mine !== seq) return;
      clear(msg);
      const json = JSON.stringify(res) + f.cols + f.mcols + f.stat;
      if (json === lastJson) return;
      lastJson = json;
      render(res);
      hooks.marks[first ? 'runs-first' : 'runs-update'] = { ms: performance.now() - t0, at: performance.now(), count: res.count, rows: res.data.length };
      // Autocomplete: metadata keys and metric names of the runs shown.
      const keys = new Set([...metaList.options].map((o) => o.value));
      for (const run of res.data) for (const k of Object.keys(run.metadata || {})) keys.add(k);
      clear(metaList).append(...[...keys].sort().map((k) => h('option', { value: k })));
      const ids = res.data.map((x) => x.id).join(',');
      if (ids && ids !== namesFor) {
        namesFor = ids;
        api('/api/metrics/names?' + qs({ runs: res.data.map((x) => x.id) })).then((names) => {
          if (Array.isArray(names)) clear(metricList).append(...names.slice(0, 2000).map((n) => h('option', { value: n })));
        }).catch(() => {});
      }
    }
    function render(res) {
      const cols = split(f.cols);
      const mcols = split(f.mcols);
      const sortBtn = (key, label) => h('button', {
        type: 'button', class: 'sort', 'data-sort': key, 'aria-sort': f.sort === key ? (f.desc ? 'descending' : 'ascending') : null,
        onclick: () => { if (f.sort === key) f.desc = !f.desc; else { f.sort = key; f.desc = key === 'created'; } f.page = 0; changed(false); },
      }, label, f.sort === key ? (f.desc ? ' ▼' : ' ▲') : '');
      const boxes = [];
      const all = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'select all on this page', onchange: () => {
        for (const [cb, id] of boxes) { cb.checked = all.checked; if (all.checked) selected.add(id); else selected.delete(id); }
        updateSel();
      } });
      const head = h('tr', {}, h('th', {}, all), h('th', {}, sortBtn('status', 'Status')), h('th', {}, sortBtn('name', 'Name')),
        h('th', {}, sortBtn('folder', 'Folder')), h('th', {}, 'Tags'), h('th', {}, sortBtn('created', 'Created')), h('th', {}, 'Duration'),
        mcols.map((k) => h('th', {}, sortBtn('metadata.' + k, k))),
        cols.map((c) => h('th', { class: 'num' }, sortBtn(`metrics.${c}.${f.stat}`, `${withUnit(c, commonUnit(res.data, c))} (${f.stat})`))));
      archivedIds.clear();
      for (const run of res.data) if ((run.tags || []).includes(ARCHIVED)) archivedIds.add(run.id);
      const rows = res.data.map((run) => {
        const cb = h('input', { type: 'checkbox', 'aria-label': 'select ' + run.name, checked: selected.has(run.id), onchange: () => {
          if (cb.checked) selected.add(run.id); else selected.delete(run.id);
          updateSel();
        } });
        boxes.push([cb, run.id]);
        return h('tr', { 'data-run-id': run.id },
          h('td', {}, cb), h('td', {}, badge(run.status)),
          h('td', { class: 'name' }, h('a', { href: '#/run/' + encodeURIComponent(run.id), title: run.name }, run.name)),
          h('td', { class: 'clip', title: run.folder }, h('a', { href: '#/folders?path=' + encodeURIComponent(run.folder) }, run.folder)),
          h('td', {}, tags(run.tags)), h('td', { class: 'num' }, fmtTime(run.created)), h('td', { class: 'num' }, fmtDuration(run.runtime)),
          mcols.map((k) => h('td', { class: 'mono', 'data-meta': k }, k in (run.metadata || {}) ? fmtValue(run.metadata[k]) : '')),
          cols.map((c) => { const m = (run.metrics || {})[c]; return h('td', { class: 'num', 'data-metric': c }, m ? fmtNum(m[f.stat] ?? (m.nonfinite && m.nonfinite[f.stat])) : ''); }));
      });
      clear(table).append(h('thead', {}, head), h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 7 + cols.length + mcols.length, class: 'muted' }, 'No runs match.'))));
      const pages = Math.max(1, Math.ceil(res.count / f.size));
      pageEl.textContent = `page ${f.page + 1} of ${pages}`;
      jump.max = pages;
      prev.disabled = f.page <= 0;
      next.disabled = f.page + 1 >= pages;
      countEl.textContent = `${res.count} run${res.count === 1 ? '' : 's'}`;
    }
    function updateSel() {
      compareBtn.disabled = selected.size < 1;
      compareBtn.textContent = `Compare selected (${selected.size})`;
      deleteBtn.disabled = selected.size < 1;
      deleteBtn.textContent = `Delete selected (${selected.size})`;
      archiveBtn.disabled = selected.size < 1;
      const unarchive = selected.size > 0 && [...selected].every((i) => archivedIds.has(i));
      archiveBtn.textContent = `${unarchive ? 'Unarchive' : 'Archive'} selected (${selected.size})`;
    }
    function changed(resetPage, typedIn) {
      writeQuery(resetPage, !typedIn);
      load(false).catch((e) => showError(clear(msg), e));
    }
    // The address follows every keystroke (a saved view or bookmark taken
    // at any moment is what the table shows); loads are debounced.
    function writeQuery(resetPage, push) {
      if (resetPage) f.page = 0;
      localStorage.setItem('simtrack.cols', f.cols);
      setQuery({ status: f.status, folder: f.folder, tag: f.tag, meta: f.meta, q: f.q, where: f.where, sort: f.sort === 'created' ? '' : f.sort, desc: f.desc ? '' : '0', page: f.page || '', cols: f.cols, mcols: f.mcols, stat: f.stat === 'last' ? '' : f.stat, size: f.size === PAGE_SIZE ? '' : f.size, archived: f.archived ? '1' : '' }, push);
    }
    // CSV of the whole current view (every page), as the table shows it.
    exportBtn.addEventListener('click', async () => {
      exportBtn.disabled = true;
      try {
        const cols = split(f.cols), mcols = split(f.mcols);
        const lines = [['id', 'name', 'status', 'folder', 'tags', 'created', 'duration', ...mcols.map((k) => 'metadata.' + k), ...cols.map((c) => `${c}.${f.stat}`)].map(csvCell).join(',')];
        for (let start = 0, total = Infinity; start < total && start < 100000; start += 1000) {
          const res = await api('/api/ui/runs?' + params(start, 1000));
          total = res.count;
          for (const run of res.data) {
            const m = (c) => { const x = (run.metrics || {})[c]; return x ? fmtNum(x[f.stat] ?? (x.nonfinite && x.nonfinite[f.stat])) : ''; };
            lines.push([run.id, run.name, run.status, run.folder, (run.tags || []).join(';'), fmtTime(run.created), run.runtime || '',
              ...mcols.map((k) => (k in (run.metadata || {}) ? fmtValue(run.metadata[k]) : '')), ...cols.map(m)].map(csvCell).join(','));
          }
          if (!res.data.length) break;
        }
        const a = h('a', { href: URL.createObjectURL(new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv' })), download: 'simtrack-runs.csv' });
        document.body.append(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      } catch (e) { showError(clear(msg), e); } finally { exportBtn.disabled = false; }
    });
    const typed = debounce(() => changed(true, true), 120);
    statusSel.addEventListener('change', () => { f.status = statusSel.value; changed(true); });
    statSel.addEventListener('change', () => { f.stat = statSel.value; changed(false); });
    sizeSel.addEventListener('change', () => { f.size = +sizeSel.value; changed(true); });
    jump.addEventListener('change', () => { const n = Math.max(1, Math.floor(+jump.value || 1)); f.page = n - 1; jump.value = ''; changed(false); });
    for (const [k, el] of Object.entries(inputs)) el.addEventListener('input', () => { f[k] = el.value; writeQuery(true); (k === 'where' ? typedSlow : typed)(); });
    const typedSlow = debounce(() => changed(true, true), 400);
    const slash = (e) => { if (e.key === '/' && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) { e.preventDefault(); inputs.q.focus(); } };
    document.addEventListener('keydown', slash);
    onCleanup(() => document.removeEventListener('keydown', slash));
    await load(true);
    every(view, POLL_MS, () => load(false));
  }

  // ---------- charts ----------
  // [x, y] for uPlot; `.bad` lists the NaN/±Inf points ({x, step, kind}):
  // they are gaps in the line, drawn as markers and listed by step.
  function toSeries(points, axis, log) {
    const n = points.length;
    const x = new Float64Array(n);
    const y = new Array(n);
    const bad = [];
    for (let i = 0; i < n; i++) {
      const p = points[i];
      x[i] = axis === 'timestamp' ? parseTs(p.timestamp) / 1000 : p[axis];
      const v = num(p.value);
      if (typeof v === 'number' && !Number.isFinite(v)) bad.push({ x: x[i], step: p.step, kind: fmtNum(v) });
      y[i] = v === null || typeof v !== 'number' || !Number.isFinite(v) || (log && v <= 0) ? null : v;
    }
    const out = [x, y];
    out.bad = bad;
    return out;
  }
  // The same from /api/ui/metrics/series columns ({x, y}, non-finite y as
  // strings); `step` of a bad point is known on the step axis only.
  function columnSeries(col, axis, log) {
    const xs = (col && col.x) || [], ys = (col && col.y) || [];
    const y = new Array(ys.length);
    const bad = [];
    for (let i = 0; i < ys.length; i++) {
      const v = ys[i];
      if (typeof v === 'number' && (!log || v > 0)) { y[i] = v; continue; }
      y[i] = null;
      if (typeof v === 'string') { const n = num(v); bad.push({ x: xs[i], step: axis === 'step' ? xs[i] : null, kind: fmtNum(n) }); }
    }
    const out = [xs, y];
    out.bad = bad;
    return out;
  }
  // "NaN at steps 80–89, 91–99 (19 points); Inf at step 90"
  function describeBad(bad) {
    const parts = [];
    for (const kind of ['NaN', 'Inf', '-Inf']) {
      const steps = bad.filter((b) => b.kind === kind).map((b) => b.step).sort((a, b) => a - b);
      if (!steps.length) continue;
      const runs = [];
      for (const st of steps) {
        const last = runs[runs.length - 1];
        if (last && st === last[1] + 1) last[1] = st; else runs.push([st, st]);
      }
      const shown = runs.slice(0, 6).map(([a, b]) => (a === b ? String(a) : `${a}–${b}`)).join(', ') + (runs.length > 6 ? ', …' : '');
      parts.push(`${kind} at step${steps.length > 1 ? 's' : ''} ${shown}${steps.length > 1 ? ` (${steps.length} points)` : ''}`);
    }
    return parts.join('; ');
  }
  // Remembers, per series, which x indexes hold NaN/±Inf (legend) and their
  // x values (markers). `bad[si-1]` belongs to series si.
  function setBad(u, bad) {
    const xs = u.data[0];
    u.__bad = bad.map((list) => {
      const at = new Map();
      for (const b of list || []) {
        let lo = 0, hi = xs.length - 1;
        while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid] < b.x) lo = mid + 1; else hi = mid; }
        if (xs[lo] === b.x && !at.has(lo)) at.set(lo, b.kind);
      }
      return at;
    });
  }
  // Markers for NaN (a ring on the top edge), +Inf (▲ on top), -Inf (▼ at the bottom).
  function drawBad(u) {
    if (!u.__bad) return;
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const r = 4 * (window.devicePixelRatio || 1);
    ctx.save();
    ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
    u.__bad.forEach((at, k) => {
      const s = u.series[k + 1];
      if (!s || !s.show || !at.size) return;
      ctx.strokeStyle = ctx.fillStyle = typeof s.stroke === 'function' ? s.stroke(u, k + 1) : s.stroke;
      let n = 0;
      for (const [i, kind] of at) {
        if (++n > 5000) break;
        const px = u.valToPos(u.data[0][i], 'x', true);
        if (px < left || px > left + width) continue;
        ctx.beginPath();
        if (kind === 'NaN') { ctx.arc(px, top + r + 1, r, 0, 2 * Math.PI); ctx.stroke(); } else {
          const y0 = kind === 'Inf' ? top + 1 : top + height - 1;
          const d = kind === 'Inf' ? 1 : -1;
          ctx.moveTo(px, y0); ctx.lineTo(px - r, y0 + d * 2 * r); ctx.lineTo(px + r, y0 + d * 2 * r); ctx.closePath(); ctx.fill();
        }
      }
    });
    ctx.restore();
  }
  // Tick labels: short at any magnitude (1e-9, 2.5e-4, 0.01, 1200, 3e+12 → 3e12).
  function fmtTick(v) {
    if (v === null || v === undefined) return '';
    if (v === 0) return '0';
    const a = Math.abs(v);
    if (a >= 1e-3 && a < 1e6) return String(+v.toPrecision(6));
    return v.toExponential(6).replace(/\.?0+e/, 'e').replace('e+', 'e');
  }
  // The unit a run's client recorded for a metric (the simvue client's
  // set_metric_units, the library's simtrack_metric_unit): run metadata
  // simvue.metrics.NAME.units; '' when none.
  function unitOf(run, name) {
    const m = run && run.metadata && run.metadata.simvue && run.metadata.simvue.metrics;
    const u = m && m[name] && m[name].units;
    return typeof u === 'string' ? u : '';
  }
  // The unit every one of `runs` gives a metric ('' when none, or they differ).
  function commonUnit(runs, name) {
    const us = new Set(runs.map((r) => unitOf(r, name)));
    return us.size === 1 ? [...us][0] : '';
  }
  const withUnit = (label, u) => (u ? `${label} [${u}]` : label);
  const measure = document.createElement('canvas').getContext('2d');
  // An axis as wide as its longest label (uPlot calls this until it settles).
  function axisSize(u, values, ai) {
    const ax = u.axes[ai];
    if (!values) return 50;
    measure.font = ax.font[0];
    let w = 0;
    for (const v of values) if (v) w = Math.max(w, measure.measureText(v).width);
    return Math.ceil(w / (window.devicePixelRatio || 1)) + (ax.ticks.size || 10) + (ax.gap || 5) + 6;
  }
  // Seconds since the start in a unit that fits the range, with as many
  // decimals as the tick spacing needs (0.001 s apart stay distinct).
  function timeTicks(u, vals, ai, space, incr) {
    const top = Math.max(...vals.map((v) => Math.abs(v)));
    const [unit, f] = top < 120 ? ['s', 1] : top < 7200 ? ['min', 60] : top < 172800 ? ['h', 3600] : ['d', 86400];
    const dec = Math.min(9, Math.max(0, Math.ceil(-Math.log10(incr / f) - 1e-9)));
    return vals.map((v) => (v / f).toFixed(dec) + ' ' + unit);
  }
  const iso = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const hms = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  // ISO dates and 24-hour times, never the US style uPlot defaults to.
  function stampTicks(u, vals, ai, space, incr) {
    return vals.map((v) => {
      const d = new Date(v * 1000);
      if (incr >= 86400) return iso(d);
      if (incr >= 60) return `${iso(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
      if (incr >= 1) return hms(d);
      const dec = Math.min(6, Math.max(1, Math.ceil(-Math.log10(incr) - 1e-9)));
      return hms(d) + (v % 1 >= 0 ? (v - Math.floor(v)).toFixed(dec).slice(1) : '');
    });
  }
  function fmtX(axis, v) {
    if (v === null || v === undefined) return '--';
    if (axis === 'timestamp') { const d = new Date(v * 1000); return `${iso(d)} ${hms(d)}.${String(d.getMilliseconds()).padStart(3, '0')}`; }
    if (axis === 'time') return fmtNum(v) + ' s';
    return String(v);
  }
  const cssVar = (n) => getComputedStyle(document.documentElement).getPropertyValue(n).trim();
  function chartOpts(width, axis, log, series, title, colours) {
    // Axis text and grid from the page's colours (dark mode included).
    const ink = cssVar('--muted') || '#5f6b7d', grid = { stroke: cssVar('--line') || '#dde2ea', width: 1 };
    const style = (a) => Object.assign(a, { stroke: ink, grid, ticks: { stroke: grid.stroke, width: 1, size: 10 } });
    return {
      width, height: 200, title,
      scales: { x: { time: axis === 'timestamp' }, y: { distr: log ? 3 : 1 } },
      // Legend values with 6 significant digits: residuals of 1e-12 must not read as 0.
      // NaN/±Inf are gaps, not joined over, so where the series breaks shows.
      series: [{ label: axis, value: (u, v) => fmtX(axis, v) }, ...series.map((s, i) => ({
        label: s, stroke: (colours && colours[i]) || colour(i), width: 1.5, spanGaps: false,
        value: (u, v, si, idx) => (v == null ? (idx != null && u.__bad && u.__bad[si - 1] && u.__bad[si - 1].get(idx)) || '--' : fmtNum(v)),
      }))],
      axes: [
        style({ label: axis === 'time' ? 'time' : axis === 'step' ? 'step' : null, size: 40, values: axis === 'time' ? timeTicks : axis === 'timestamp' ? stampTicks : (u, vals) => vals.map(fmtTick) }),
        style({ size: axisSize, values: (u, vals) => vals.map(fmtTick) }),
      ],
      hooks: { draw: [drawBad] },
      cursor: { drag: { x: true, y: false, setScale: true } },
      legend: { live: true },
    };
  }
  const maxPoints = (width) => Math.max(400, Math.min(4000, Math.round(width * 2)));

  // ---------- a run ----------
  async function runPage(r, view) {
    const id = r.arg;
    let run;
    try { run = await api('/api/runs/' + encodeURIComponent(id)); } catch (e) {
      if (e.status === 404) return notFound(view, 'Run not found', `No run with id "${id}" exists here, or it was deleted, or you may not see it.`);
      throw e;
    }
    const axisSel = h('select', { id: 'xaxis' }, ['step', 'time', 'timestamp'].map((a) => h('option', { value: a }, a)));
    axisSel.value = r.params.get('x') || 'step';
    const logBox = h('input', { type: 'checkbox', id: 'logscale', checked: r.params.get('log') === '1' });
    const metricFilter = h('input', { id: 'metric-filter', type: 'search', placeholder: 'filter metrics', value: r.params.get('m') || '' });
    const statusEl = h('span', { id: 'run-status' });
    const abortBtn = h('button', { type: 'button', class: 'danger', id: 'abort' }, 'Abort');
    const starBtn = h('button', { type: 'button', id: 'star', 'aria-pressed': 'false' }, '☆ Star');
    const editBtn = h('button', { type: 'button', id: 'edit-run' }, 'Edit');
    const delBtn = h('button', { type: 'button', id: 'delete-run' }, 'Delete');
    const archBtn = h('button', { type: 'button', id: 'archive-run' }, 'Archive');
    const editForm = h('form', { class: 'panel', id: 'edit-form', hidden: true });
    const abortMsg = h('span', { class: 'muted', id: 'abort-msg', role: 'status' });
    const info = h('div', { class: 'cols' });
    const chartsEl = h('div', { id: 'charts' });
    // Metrics grouped by the prefix before their first '/' (residual/u,
    // residual/v → "residual"), each group collapsible; the rest first.
    const groups = new Map(); // prefix -> {box, grid}
    const groupOf = (n) => (n.includes('/') ? n.slice(0, n.indexOf('/')) : '');
    function gridFor(g) {
      if (!groups.has(g)) {
        const grid = h('div', { class: 'charts' });
        const count = h('span', { class: 'muted' });
        const box = g === '' ? h('div', { class: 'group', 'data-group': '' }, grid)
          : h('details', { class: 'group', open: true, 'data-group': g }, h('summary', {}, h('strong', {}, g), ' ', count), grid);
        groups.set(g, { box, grid, count });
      }
      return groups.get(g).grid;
    }
    const chartsNote = h('p', { class: 'muted' });
    const eventsEl = h('div');
    const filesEl = h('div', { id: 'files' });
    const alertsEl = h('div', { id: 'run-alerts' });
    const title = h('h1', { id: 'run-name' });
    // Tabs: Overview shows every section but the full system listing; the
    // others show one. The tab is in the address, so a link or Back keeps it.
    const TABS = [['overview', 'Overview'], ['metrics', 'Metrics'], ['events', 'Events'], ['files', 'Files'], ['alerts', 'Alerts'], ['system', 'System']];
    let tab = TABS.some(([t]) => t === r.params.get('tab')) ? r.params.get('tab') : 'overview';
    const tabBar = h('div', { class: 'tabs', role: 'tablist', id: 'run-tabs' }, TABS.map(([t, label]) =>
      h('button', { type: 'button', role: 'tab', id: 'tab-' + t, 'data-tab': t, onclick: () => { tab = t; showTab(); saveView(true); } }, label)));
    const systemEl = h('div', { id: 'system-full' });
    const sec = (t, ...kids) => h('section', { class: 'run-section', dataset: { tab: t } }, ...kids);
    view.append(
      h('p', {}, h('a', { href: '#/runs' }, '← Runs')),
      h('div', { class: 'run-head' }, title, statusEl, starBtn, editBtn, archBtn, delBtn, abortBtn, abortMsg),
      editForm,
      tabBar,
      sec('overview', info),
      sec('metrics', h('h2', {}, 'Metrics'),
        h('div', { class: 'row' }, h('label', {}, 'x-axis ', axisSel), h('label', {}, logBox, ' log scale'), metricFilter,
          h('span', { class: 'muted' }, 'Drag to zoom, double-click to reset.')),
        chartsNote, chartsEl,
        runSections(run, view)),
      h('div', { class: 'cols' }, sec('files', h('h2', {}, 'Files'), filesEl), sec('alerts', h('h2', {}, 'Alerts'), alertsEl)),
      sec('events', h('h2', {}, 'Events'), eventsEl),
      sec('system', h('h2', {}, 'System'), runSections(run, view, 'system'), systemEl,
        h('p', { class: 'muted' }, 'Every resource metric is also under ', h('a', { href: '#', onclick: (e) => { e.preventDefault(); tab = 'metrics'; metricFilter.value = 'resources/'; metricFilter.dispatchEvent(new Event('input')); showTab(); saveView(true); } }, 'Metrics → resources'), '.')));
    function showTab() {
      for (const el of view.querySelectorAll('section.run-section')) el.hidden = tab === 'overview' ? el.dataset.tab === 'system' : el.dataset.tab !== tab;
      for (const b of tabBar.children) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
      hooks.tab = tab;
    }
    showTab();

    abortBtn.addEventListener('click', async () => {
      if (!confirm(`Ask run "${run.name}" to stop? The solver decides how to stop when it next checks.`)) return;
      abortBtn.disabled = true;
      try {
        await api(`/api/runs/${encodeURIComponent(id)}/abort`, { method: 'PUT', body: { reason: `requested from the web UI by ${user.user}` } });
        abortMsg.textContent = 'Abort requested; waiting for the solver to stop…';
      } catch (e) { abortBtn.disabled = false; abortMsg.textContent = 'Abort failed: ' + e.message; }
    });

    starBtn.addEventListener('click', async () => {
      const on = !run.starred;
      await api(`/api/runs/${encodeURIComponent(id)}/starred`, { method: 'PUT', body: { starred: on } });
      run = await api('/api/runs/' + encodeURIComponent(id));
      renderHead();
    });
    archBtn.addEventListener('click', async () => {
      try {
        await setArchived([id], !(run.tags || []).includes(ARCHIVED));
        run = await api('/api/runs/' + encodeURIComponent(id));
        renderHead();
      } catch (e) { abortMsg.textContent = 'Archive failed: ' + e.message; }
    });
    delBtn.addEventListener('click', async () => {
      try { if (await deleteRuns([id])) location.hash = '#/runs'; } catch (e) { abortMsg.textContent = 'Delete failed: ' + e.message; }
    });
    editBtn.addEventListener('click', () => {
      if (!editForm.hidden) { editForm.hidden = true; return; }
      const name = h('input', { id: 'edit-name', value: run.name, required: true });
      const desc = h('textarea', { id: 'edit-description' }, run.description || '');
      const tg = h('input', { id: 'edit-tags', value: (run.tags || []).join(', ') });
      const folder = h('input', { id: 'edit-folder', value: run.folder });
      const err = h('div');
      clear(editForm).append(h('div', { class: 'filters' },
        h('label', { class: 'field' }, 'Name', name), h('label', { class: 'field' }, 'Tags (comma-separated)', tg),
        h('label', { class: 'field' }, 'Folder (moves the run)', folder), h('label', { class: 'field' }, 'Description', desc)),
      h('div', { class: 'row' }, h('button', { class: 'primary', type: 'submit', id: 'edit-save' }, 'Save'), h('button', { type: 'button', onclick: () => { editForm.hidden = true; } }, 'Cancel')), err);
      editForm.onsubmit = async (ev) => {
        ev.preventDefault();
        clear(err);
        try {
          await api('/api/runs/' + encodeURIComponent(id), { method: 'PUT', body: { name: name.value.trim(), description: desc.value, tags: tg.value.split(',').map((t) => t.trim()).filter(Boolean), folder: folder.value.trim() || '/' } });
          run = await api('/api/runs/' + encodeURIComponent(id));
          editForm.hidden = true;
          renderHead();
        } catch (e) { showError(err, e); }
      };
      editForm.hidden = false;
      name.focus();
    });

    let systemOpen = false;
    function renderHead() {
      title.textContent = run.name;
      document.title = run.name + ' · simtrack';
      clear(statusEl).append(badge(run.status));
      starBtn.textContent = run.starred ? '★ Starred' : '☆ Star';
      starBtn.setAttribute('aria-pressed', String(!!run.starred));
      archBtn.textContent = (run.tags || []).includes(ARCHIVED) ? 'Unarchive' : 'Archive';
      const live = LIVE.has(run.status);
      // A lost run is silent: nothing would hear an abort.
      abortBtn.hidden = !(run.status === 'running' || run.status === 'created');
      abortBtn.disabled = run.abort_requested;
      if (run.abort_requested && live) abortMsg.textContent = 'Abort requested; waiting for the solver to stop…';
      else if (run.abort_requested) abortMsg.textContent = 'Stopped after an abort request.';
      const sys = run.system || {};
      clear(info).append(
        h('div', { class: 'panel' }, h('table', { class: 'kv', id: 'run-info' }, h('tbody', {},
          [['id', h('span', { class: 'mono' }, run.id)], ['folder', h('a', { href: '#/folders?path=' + encodeURIComponent(run.folder) }, run.folder)],
            ['tags', tags(run.tags)], ['user', run.user], ['created', fmtTime(run.created)], ['started', fmtTime(run.started)],
            ['ended', fmtTime(run.endtime)], ['duration', fmtDuration(run.runtime)], ['last heartbeat', fmtTime(run.last_heartbeat)],
            ['description', run.description || '']].map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v)))))),
        h('div', { class: 'panel' }, h('h2', { style: 'margin-top:0' }, 'Metadata'), h('div', { id: 'run-metadata' }, kvTable(run.metadata, 'No metadata.'))),
        h('details', { class: 'panel', id: 'run-system', open: systemOpen }, h('summary', {}, h('strong', {}, 'System'), h('span', { class: 'muted' }, ` ${sys.hostname || ''} ${sys.cwd || ''}`)), kvTable(sys, 'No system information.')));
      info.querySelector('#run-system').addEventListener('toggle', (e) => { systemOpen = e.target.open; });
      clear(systemEl).append(h('div', { class: 'panel' }, kvTable(sys, 'No system information.')));
    }

    // Charts: one per metric; the first EAGER_CHARTS load at once, the rest
    // when scrolled near, so a run with 500 metrics stays responsive.
    const charts = new Map(); // name -> {card, plotEl, u, count, zoomed, visible}
    let axis = axisSel.value, log = logBox.checked;
    const io = new IntersectionObserver((entries) => {
      const want = [];
      for (const e of entries) if (e.isIntersecting) { const c = charts.get(e.target.dataset.metric); if (c && !c.u && !c.loading) want.push(c.name); }
      if (want.length) fetchCharts(want);
    }, { rootMargin: '600px' });
    onCleanup(() => io.disconnect());
    // Live refreshes fetch only the charts on screen; one scrolled into view
    // while out of date catches up then.
    const onScreen = new Set();
    const isStale = (c) => c.u && !c.loading && !c.zoomed && run.metrics[c.name] && run.metrics[c.name].count !== c.count;
    const vis = new IntersectionObserver((entries) => {
      for (const e of entries) { const n = e.target.dataset.metric; if (e.isIntersecting) onScreen.add(n); else onScreen.delete(n); }
      const stale = [...onScreen].map((n) => charts.get(n)).filter((c) => c && isStale(c)).map((c) => c.name);
      if (stale.length) fetchCharts(stale);
    });
    onCleanup(() => vis.disconnect());
    let lastWidth = 0;
    const ro = new ResizeObserver(debounce(() => {
      const first = charts.values().next().value;
      const w = first ? plotWidth(first) : 0;
      if (!w || w === lastWidth) return;
      lastWidth = w;
      for (const c of charts.values()) if (c.u) c.u.setSize({ width: w, height: 200 });
    }, 100));
    ro.observe(chartsEl);
    onCleanup(() => ro.disconnect());
    const plotWidth = (c) => Math.max(200, Math.floor(c.plotEl.clientWidth || c.card.clientWidth - 16));

    function syncCards() {
      const names = Object.keys(run.metrics || {}).sort();
      const needle = metricFilter.value.trim().toLowerCase();
      const matching = names.filter((n) => !needle || n.toLowerCase().includes(needle));
      const shown = matching.filter((n) => !groupOf(n)).concat(matching.filter((n) => groupOf(n)));
      chartsNote.textContent = names.length ? `${shown.length} of ${names.length} metrics` : 'No metrics yet.';
      const keep = new Set(shown);
      for (const [n, c] of charts) if (!keep.has(n)) { io.unobserve(c.card); vis.unobserve(c.card); onScreen.delete(n); if (c.u) c.u.destroy(); c.card.remove(); charts.delete(n); hooks.charts.delete(n); }
      const fresh = [];
      shown.forEach((n, i) => {
        if (charts.has(n)) return;
        const plotEl = h('div', { class: 'plot' });
        const noteEl = h('div', { class: 'nonfinite', 'data-testid': 'nonfinite', hidden: true });
        const csvBtn = h('button', { type: 'button', class: 'link csv', 'data-csv': n, title: 'every point, full resolution', onclick: () => downloadCsv(n, csvBtn) }, 'CSV');
        const card = h('div', { class: 'chart', dataset: { metric: n } }, h('div', { class: 'title row' }, h('span', { class: 'grow' }, withUnit(n, unitOf(run, n))), csvBtn), noteEl, plotEl);
        const c = { name: n, card, plotEl, noteEl, u: null, count: -1, loading: false, zoomed: false };
        charts.set(n, c);
        gridFor(groupOf(n)).append(card);
        vis.observe(card);
        if (i < EAGER_CHARTS) fresh.push(n); else io.observe(card);
      });
      // keep DOM order = sorted order
      for (const n of shown) gridFor(groupOf(n)).append(charts.get(n).card);
      const used = new Set(shown.map(groupOf));
      for (const [g, x] of groups) {
        if (!used.has(g)) { x.box.remove(); groups.delete(g); continue; }
        x.count.textContent = `(${x.grid.children.length})`;
      }
      chartsEl.append(...[...groups.keys()].sort().map((g) => groups.get(g).box));
      return fresh;
    }

    let generation = 0; // bumped by redrawAll: answers for older settings are dropped
    // A metric at full resolution (the chart shows a downsampled view).
    async function downloadCsv(name, btn) {
      btn.disabled = true;
      try {
        const res = await api('/api/metrics?' + qs({ runs: [id], metrics: [name], xaxis: 'step' }));
        const pts = (res[id] || {})[name] || [];
        const lines = ['step,time,timestamp,value'];
        for (const p of pts) lines.push(`${p.step},${p.time},${p.timestamp},${fmtCsvNum(p.value)}`);
        const a = h('a', { href: URL.createObjectURL(new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv' })), download: `${run.name}-${name}.csv`.replace(/[\/\\:]/g, '_') });
        document.body.append(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      } catch (e) { showError(chartsNote, e); } finally { btn.disabled = false; }
    }

    async function fetchCharts(names) {
      const gen = generation;
      const t0 = performance.now();
      const list = names.map((n) => charts.get(n)).filter(Boolean);
      for (const c of list) c.loading = true;
      const batches = [];
      for (let i = 0; i < list.length; i += 6) batches.push(list.slice(i, i + 6));
      // Measured once: reading layout between charts would force a reflow
      // of the whole page per chart.
      const width = list.length ? plotWidth(list[0]) : 400;
      lastWidth = width;
      const pending = [];
      let next = 0;
      const worker = async () => {
        while (next < batches.length) {
          const b = batches[next++];
          if (!view.isConnected) return;
          const res = await api('/api/metrics?' + qs({ runs: [id], metrics: b.map((c) => c.name), xaxis: axis, max_points: maxPoints(width) }));
          if (!view.isConnected || gen !== generation) return;
          const series = res[id] || {};
          for (const c of b) { draw(c, series[c.name] || [], width); c.loading = false; }
        }
      };
      for (let k = 0; k < Math.min(2, batches.length); k++) pending.push(worker());
      await Promise.all(pending);
      hooks.marks.charts = { ms: performance.now() - t0, at: performance.now(), count: [...charts.values()].filter((c) => c.u).length };
    }

    function draw(c, points, width) {
      const data = toSeries(points, axis, log);
      const n = data[0].length;
      c.full = n ? [data[0][0], data[0][n - 1]] : null;
      c.count = run.metrics[c.name] ? run.metrics[c.name].count : points.length;
      const note = describeBad(data.bad);
      c.noteEl.textContent = note;
      c.noteEl.hidden = !note;
      if (c.u) { setBad(c.u, [data.bad]); c.u.setData(data, !c.zoomed); return; }
      const opts = chartOpts(width, axis, log, [c.name]);
      const unit = unitOf(run, c.name);
      if (unit) Object.assign(opts.axes[1], { label: unit, labelSize: 18 });
      opts.hooks = {
        ...opts.hooks,
        // A zoom (x range narrower than the series) fetches that range at
        // full detail: the overview is downsampled.
        setScale: [(u, key) => {
          if (key !== 'x' || c.settingRange || !c.full) return;
          const { min, max } = u.scales.x;
          const eps = (c.full[1] - c.full[0]) * 1e-9;
          c.zoomed = min > c.full[0] + eps || max < c.full[1] - eps;
          if (c.zoomed) zoomDetail(c, min, max);
        }],
      };
      // Built detached, then attached: no layout is forced while building.
      const holder = h('div');
      c.u = new uPlot(opts, data, holder);
      setBad(c.u, [data.bad]);
      c.u.redraw(false, false);
      c.plotEl.replaceChildren(holder);
      c.plotEl.addEventListener('dblclick', () => { c.zoomed = false; c.zoomSeq = (c.zoomSeq || 0) + 1; fetchCharts([c.name]); });
      hooks.charts.set(c.name, c.u);
    }

    async function zoomDetail(c, min, max) {
      const seq = (c.zoomSeq = (c.zoomSeq || 0) + 1);
      const scale = axis === 'timestamp' ? 1e6 : 1;
      const res = await api('/api/ui/metrics/range?' + qs({ run: id, metric: c.name, xaxis: axis, min: min * scale, max: max * scale, max_points: maxPoints(c.u.width) }));
      if (seq !== c.zoomSeq || !c.zoomed || !c.u) return;
      const x = Float64Array.from(res.x, (v) => v / scale);
      const y = res.y.map((v) => (v === null || (log && v <= 0) ? null : v));
      c.settingRange = true;
      c.u.setData([x, y], false);
      c.u.setScale('x', { min, max });
      c.settingRange = false;
      hooks.marks.zoom = { metric: c.name, points: x.length, at: performance.now() };
    }

    function redrawAll() {
      generation++;
      for (const c of charts.values()) { if (c.u) { c.u.destroy(); c.u = null; hooks.charts.delete(c.name); } c.count = -1; c.zoomed = false; c.loading = false; }
      // The first EAGER_CHARTS, and every chart on screen now; the rest are
      // watched afresh (observing a card already watched reports nothing,
      // which left charts past the first 60 blank).
      const all = [...charts.values()];
      const names = all.filter((c, i) => i < EAGER_CHARTS || onScreen.has(c.name)).map((c) => c.name);
      for (const c of all.slice(EAGER_CHARTS)) { io.unobserve(c.card); io.observe(c.card); }
      return fetchCharts(names);
    }
    const saveView = (push) => setQuery({ tab: tab === 'overview' ? '' : tab, x: axis === 'step' ? '' : axis, log: log ? '1' : '', m: metricFilter.value }, push);
    axisSel.addEventListener('change', () => { axis = axisSel.value; saveView(); redrawAll(); });
    logBox.addEventListener('change', () => { log = logBox.checked; saveView(); redrawAll(); });
    metricFilter.addEventListener('input', debounce(() => { saveView(); const fresh = syncCards(); if (fresh.length) fetchCharts(fresh); }, 200));

    // Events, files, alerts.
    const evSearch = h('input', { type: 'search', id: 'event-search', placeholder: 'search events' });
    const evLevel = h('select', { id: 'event-level' }, h('option', { value: '' }, 'all levels'), LEVELS.map((l) => h('option', { value: l }, l)));
    const evTable = h('table', { id: 'events' });
    const evCount = h('span', { class: 'muted' });
    eventsEl.append(h('div', { class: 'row' }, evSearch, evLevel, evCount), h('div', { class: 'events table-wrap' }, evTable));
    // The newest EVENTS_KEPT events are kept (a run wrapped by `simtrack
    // run` may have millions): `base` is the server's index of events[0].
    const EVENTS_KEPT = 10000;
    const ALERT_EVENT = '[simtrack] alert ';
    const countAlerts = (list) => list.filter((e) => e.message.startsWith(ALERT_EVENT)).length;
    let events = [], base = 0, olderAlerts = [];
    const eventRows = (list) => list.slice(-2000).reverse().map((e) => h('tr', { class: 'level-' + e.log_level }, h('td', { class: 'time' }, fmtTime(e.timestamp)), h('td', { class: 'lvl' }, h('span', { class: 'level' }, e.log_level)), h('td', { class: 'mono msg' }, e.message)));
    // A search while only the newest events are here is the server's: it
    // reads them all (the newest 2000 matches are shown). Its result stays
    // until the search changes.
    let searchSeq = 0, searched = '';
    async function serverSearch(needle, lvl) {
      const key = JSON.stringify([needle, lvl]);
      if (key === searched) return;
      searched = key;
      const seq = ++searchSeq;
      const filters = [];
      if (needle) filters.push('message icontains ' + needle);
      if (lvl) filters.push('log_level == ' + lvl);
      evCount.textContent = 'searching all events…';
      try {
        const first = await api('/api/events?' + qs({ run: id, system: true, filters, count: 1 }));
        const total = first.count || 0;
        const page = total > 1 ? await api('/api/events?' + qs({ run: id, system: true, filters, start: Math.max(0, total - 2000), count: 2000 })) : first;
        if (seq !== searchSeq) return;
        evCount.textContent = `${total} matching of all ${base + events.length} events${total > 2000 ? ', the newest 2000 shown' : ''}, newest first`;
        clear(evTable).append(h('tbody', {}, eventRows(page.data || [])));
      } catch (e) { if (seq === searchSeq) { searched = ''; showError(evCount, e); } }
    }
    function renderEvents() {
      const needle = evSearch.value.trim().toLowerCase();
      const lvl = evLevel.value;
      if (base && (needle || lvl)) return serverSearch(needle, lvl);
      searched = ''; searchSeq++;
      const shown = events.filter((e) => (!lvl || e.log_level === lvl) && (!needle || e.message.toLowerCase().includes(needle)));
      evCount.textContent = base
        ? `the newest ${events.length} of ${base + events.length} events, newest first`
        : `${shown.length} of ${events.length} events, newest first`;
      clear(evTable).append(h('tbody', {}, eventRows(shown)));
    }
    evSearch.addEventListener('input', debounce(renderEvents, 300));
    evLevel.addEventListener('change', renderEvents);
    // Only the events after those we have: a live page with 100,000 events
    // moves a few hundred bytes per refresh, not the whole log. When more
    // arrived than are kept, only the newest are fetched.
    const fetchEvents = (start) => api('/api/events?' + qs({ run: id, start, count: EVENTS_KEPT, system: true }));
    const listOf = (res) => (Array.isArray(res) ? res : res.data || []);
    async function loadEvents() {
      let start = base + events.length;
      let res = await fetchEvents(start);
      let list = listOf(res);
      const total = typeof res.count === 'number' ? res.count : start + list.length;
      if (total < start) { events = []; base = 0; olderAlerts = []; return loadEvents(); }
      if (total > start + list.length) {
        start = Math.max(0, total - EVENTS_KEPT);
        res = await fetchEvents(start);
        list = listOf(res);
        events = []; base = start;
        // The alert history before the kept events (the server's own
        // events, few): found by the server, once per jump.
        const older = await api('/api/events?' + qs({ run: id, system: true, count: EVENTS_KEPT, filters: ['message contains ' + ALERT_EVENT] }));
        olderAlerts = (older.data || []).slice(0, Math.max(0, (older.count || 0) - countAlerts(list)));
      }
      if (!list.length) return;
      events = events.concat(list);
      if (events.length > EVENTS_KEPT) {
        const drop = events.length - EVENTS_KEPT;
        olderAlerts = olderAlerts.concat(events.slice(0, drop).filter((e) => e.message.startsWith(ALERT_EVENT)));
        base += drop; events = events.slice(drop);
      }
      renderEvents(); renderAlerts();
    }
    let filesKey = '';
    async function loadFiles() {
      const files = await api(`/api/runs/${encodeURIComponent(id)}/artifacts`);
      const key = JSON.stringify(files.map((f) => [f.id, f.name, f.category]));
      if (key === filesKey) return;
      filesKey = key;
      clear(filesEl);
      if (!files.length) { filesEl.append(h('p', { class: 'muted' }, 'No files.')); return; }
      for (const cat of ['input', 'code', 'output', ...new Set(files.map((f) => f.category))].filter((c, i, a) => a.indexOf(c) === i)) {
        const mine = files.filter((f) => f.category === cat);
        if (!mine.length) continue;
        filesEl.append(h('h3', { style: 'font-size:13px;margin:8px 0 4px' }, cat),
          h('table', { class: 'kv' }, h('tbody', {}, mine.map((f) => {
            const kind = previewKind(f);
            const out = h('div', { class: 'preview', hidden: true, 'data-preview': f.name });
            const btn = kind ? h('button', { type: 'button', class: 'link', 'data-preview-button': f.name, onclick: () => togglePreview(f, kind, out, btn) }, 'preview') : null;
            return [h('tr', {},
              h('td', {}, h('a', { href: f.url, download: f.name.split('/').pop(), 'data-testid': 'download', title: 'SHA-256 ' + f.checksum }, f.name)),
              h('td', { class: 'num' }, fmtBytes(f.size)), h('td', { class: 'mono muted' }, (f.checksum || '').slice(0, 12)), h('td', {}, btn)),
            h('tr', { class: 'preview-row' }, h('td', { colspan: 4 }, out))];
          }).flat())));
      }
    }
    // Previews: text shown as text (never as markup), images through a
    // data: URL (an <img> runs no script, whatever the file holds).
    const TEXT_EXT = /\.(txt|log|out|err|csv|tsv|json|ya?ml|toml|ini|cfg|conf|nml|in|dat|md|rst|xml|f|f90|f95|f03|f08|for|c|h|cc|cpp|cxx|hpp|hh|cu|py|sh|jl|r|m|cmake|mk)$/i;
    const IMAGE_EXT = /\.(png|jpe?g|gif|webp|svg|bmp)$/i;
    const TEXT_MAX = 256 * 1024, IMAGE_MAX = 10 * 1024 * 1024;
    function previewKind(f) {
      const n = f.name || '', t = f.mimetype || f.mime_type || '';
      if ((IMAGE_EXT.test(n) || t.startsWith('image/')) && f.size <= IMAGE_MAX) return 'image';
      if (TEXT_EXT.test(n) || t.startsWith('text/') || t === 'application/json' || /makefile|readme/i.test(n.split('/').pop())) return 'text';
      return null;
    }
    async function togglePreview(f, kind, out, btn) {
      if (!out.hidden) { out.hidden = true; btn.textContent = 'preview'; return; }
      out.hidden = false;
      btn.textContent = 'hide';
      if (out.dataset.loaded) return;
      out.dataset.loaded = '1';
      clear(out).append(h('span', { class: 'muted' }, 'Loading…'));
      try {
        const res = await fetch(f.url);
        if (!res.ok) throw new Error(`download failed (HTTP ${res.status})`);
        const blob = await res.blob();
        if (kind === 'image') {
          const type = IMAGE_EXT.test(f.name) && /\.svg$/i.test(f.name) ? 'image/svg+xml' : (blob.type.startsWith('image/') ? blob.type : 'image/' + (f.name.split('.').pop().toLowerCase().replace('jpg', 'jpeg')));
          const url = await new Promise((ok, bad) => { const rd = new FileReader(); rd.onload = () => ok(rd.result); rd.onerror = () => bad(rd.error); rd.readAsDataURL(new Blob([blob], { type })); });
          clear(out).append(h('img', { src: url, alt: f.name, class: 'preview-image' }));
        } else {
          const text = await blob.slice(0, TEXT_MAX).text();
          clear(out).append(h('pre', { class: 'preview-text' }, text));
          if (blob.size > TEXT_MAX) out.append(h('p', { class: 'muted' }, `First ${fmtBytes(TEXT_MAX)} of ${fmtBytes(blob.size)}; download the file for the rest.`));
        }
      } catch (e) { clear(out); showError(out, e); delete out.dataset.loaded; }
    }
    function renderAlerts() {
      clear(alertsEl);
      const list = run.alerts || [];
      if (!list.length) { alertsEl.append(h('p', { class: 'muted' }, 'No alerts.')); return; }
      const msg = h('span', { class: 'muted', role: 'status' });
      alertsEl.append(h('table', { class: 'kv' }, h('tbody', {}, list.map((a) => h('tr', { 'data-alert': a.alert.id }, h('td', {}, a.alert.name), h('td', {}, h('span', { class: 'badge ' + a.status }, a.status)),
        h('td', {}, ackControl(run, a, async () => { run = await api('/api/runs/' + encodeURIComponent(id)); renderAlerts(); }, msg)),
        h('td', { class: 'muted' }, describeAlert(a.alert)))))), msg);
      const hist = olderAlerts.concat(events.filter((e) => e.message.startsWith(ALERT_EVENT)));
      alertsEl.append(h('h3', { style: 'font-size:13px;margin:8px 0 4px' }, 'History'),
        hist.length ? h('ul', {}, hist.map((e) => h('li', {}, fmtTime(e.timestamp), ' ', e.message.replace('[simtrack] ', '')))) : h('p', { class: 'muted' }, 'No changes yet.'));
    }

    renderHead();
    const fresh = syncCards();
    await Promise.all([fetchCharts(fresh), loadEvents().catch((e) => showError(eventsEl, e)), loadFiles().catch((e) => showError(filesEl, e))]);
    renderAlerts();

    // Live: while the run can still change, follow it.
    let idle = 0;
    every(view, POLL_MS, async () => {
      if (!LIVE.has(run.status) && ++idle > 3) return;
      if (LIVE.has(run.status)) idle = 0;
      const before = run;
      run = await api('/api/runs/' + encodeURIComponent(id));
      if (JSON.stringify(before) === JSON.stringify(run)) return;
      renderHead();
      renderAlerts();
      const fresh = syncCards();
      const stale = [...charts.values()].filter((c) => onScreen.has(c.name) && isStale(c)).map((c) => c.name);
      await Promise.all([fetchCharts([...fresh, ...stale]), loadEvents(), loadFiles()]);
    });
  }

  // An alert critical on a run: "acknowledged by X" once someone did, else
  // an Acknowledge button for the run's owner or an administrator.
  function ackControl(run, a, done, msg) {
    if (a.status !== 'critical') return null;
    if (a.acknowledged) return h('span', { class: 'muted ack', title: fmtTime(a.acknowledged.at) }, `acknowledged by ${a.acknowledged.by}`);
    if (!user || user.read_only || !(user.admin || user.user === run.user)) return null;
    const b = h('button', { type: 'button', class: 'link', 'data-action': 'acknowledge', title: 'Seen: stop listing it as critical now and notifying until it clears and fires again' }, 'acknowledge');
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await api(`/api/alerts/${encodeURIComponent(a.alert.id)}/acknowledge/${encodeURIComponent(run.id)}`, { method: 'POST' });
        await done();
      } catch (e) { b.disabled = false; if (msg) { clear(msg); showError(msg, e); } }
    });
    return b;
  }

  function describeAlert(a) {
    const d = a.alert || {};
    if (a.source === 'metrics') {
      const rhs = d.threshold !== undefined && d.threshold !== null ? fmtNum(d.threshold) : `[${fmtNum(d.range_low)}, ${fmtNum(d.range_high)}]`;
      return `${d.metric} ${d.rule} ${rhs} (${d.aggregation || 'average'} over ${d.window} min, every ${d.frequency} min)`;
    }
    if (a.source === 'events') return `event matches "${d.pattern}"`;
    return a.source;
  }

  // ---------- compare ----------
  // Exponential moving average, debiased (the first points are not pulled
  // towards 0); NaN/±Inf/null points stay gaps and do not enter the average.
  function ema(y, alpha) {
    const out = new Array(y.length);
    let acc = 0, weight = 0;
    for (let i = 0; i < y.length; i++) {
      const v = y[i];
      if (v === null || v === undefined || !Number.isFinite(v)) { out[i] = null; continue; }
      acc = alpha * acc + (1 - alpha) * v;
      weight = alpha * weight + (1 - alpha);
      out[i] = acc / weight;
    }
    return out;
  }
  // Draws the raw lines faint under their smoothed ones.
  function drawRaw(u) {
    if (!u.__raw) return;
    const { ctx } = u;
    ctx.save();
    ctx.globalAlpha = 0.25;
    ctx.lineWidth = window.devicePixelRatio || 1;
    u.__raw.forEach((ys, k) => {
      const s = u.series[k + 1];
      if (!s || !s.show) return;
      ctx.strokeStyle = (typeof s.stroke === 'function' ? s.stroke(u, k + 1) : s.stroke) || colour(k);
      ctx.beginPath();
      let pen = false;
      for (let i = 0; i < ys.length; i++) {
        const v = ys[i];
        if (v === null || v === undefined) { pen = false; continue; }
        const px = u.valToPos(u.data[0][i], 'x', true), py = u.valToPos(v, 'y', true);
        if (pen) ctx.lineTo(px, py); else { ctx.moveTo(px, py); pen = true; }
      }
      ctx.stroke();
    });
    ctx.restore();
  }

  // ---------- compare ----------
  async function comparePage(r, view) {
    const ids = (r.params.get('ids') || '').split(',').filter(Boolean);
    view.append(h('h1', {}, 'Compare runs'));
    if (!ids.length) {
      view.append(h('p', {}, 'Select runs on the ', h('a', { href: '#/runs' }, 'Runs'), ' page (the check boxes), then press ', h('em', {}, 'Compare selected'), '.'));
      return;
    }
    // Runs deleted since the link was made are named, not fatal.
    const got = await Promise.all(ids.map((i) => api('/api/runs/' + encodeURIComponent(i)).catch((e) => { if (e.status === 404) return null; throw e; })));
    const missing = ids.filter((i, k) => !got[k]);
    if (missing.length) view.append(h('p', { class: 'muted', id: 'compare-missing' }, `Not found (deleted, or not visible to you): ${missing.join(', ')}`));
    ids.splice(0, ids.length, ...ids.filter((i, k) => got[k]));
    const runs = got.filter(Boolean);
    if (!runs.length) return notFound(view, 'Runs not found', 'None of the runs in this comparison exists here any more.');
    const names = await api('/api/metrics/names?' + qs({ runs: ids }));
    // Metrics by how many of the runs have them (alphabetical among equals).
    const have = (n) => runs.filter((x) => x.metrics && n in x.metrics).length;
    const byCommon = [...names].sort((a, b) => have(b) - have(a) || (a < b ? -1 : 1));
    const fromUrl = (r.params.get('metrics') || r.params.get('metric') || '').split(',').filter((n) => names.includes(n));
    const chosen = new Set(fromUrl.length ? fromUrl : byCommon.filter((n) => !n.startsWith('resources/')).slice(0, 4));
    if (!chosen.size && byCommon.length) chosen.add(byCommon[0]);
    const hidden = new Set();
    const short = (n) => (n.length > 60 ? n.slice(0, 57) + '…' : n);
    const dup = (n) => runs.filter((x) => x.name === n).length > 1;
    const labels = runs.map((run) => short(run.name) + (dup(run.name) ? ` (${run.id.slice(0, 6)})` : ''));

    // Controls: metrics (with autocomplete), x-axis, log, smoothing.
    const metricSel = h('select', { id: 'compare-metric' }, byCommon.map((n) => h('option', { value: n }, `${n} (${have(n)}/${runs.length})`)));
    if (byCommon.length) metricSel.value = [...chosen][0];
    const chips = h('span', { id: 'compare-chosen', class: 'row' });
    const addBtn = h('button', { type: 'button', id: 'compare-add' }, 'Add chart');
    const axisSel = h('select', { id: 'compare-xaxis' }, ['step', 'time', 'timestamp'].map((a) => h('option', { value: a }, a)));
    axisSel.value = r.params.get('x') || 'step';
    const logBox = h('input', { type: 'checkbox', id: 'compare-log', checked: r.params.get('log') === '1' });
    const smooth = h('input', { type: 'range', id: 'compare-smooth', min: 0, max: 0.99, step: 0.01, value: r.params.get('smooth') || 0 });
    const smoothOut = h('span', { class: 'mono' });
    const runLegend = h('div', { id: 'compare-runs', class: 'row' });
    // Colour by a metadata key: a numeric key on a continuous scale, any
    // other on distinct colours, runs without the key grey.
    const metaKeys = [...new Set(runs.flatMap((x) => Object.keys(x.metadata || {})))].sort();
    const colourBy = h('select', { id: 'compare-colour' }, h('option', { value: '' }, 'run'), metaKeys.map((k) => h('option', { value: k }, 'metadata.' + k)));
    colourBy.value = metaKeys.includes(r.params.get('colour')) ? r.params.get('colour') : '';
    const colourKey = h('span', { id: 'colour-key', class: 'row' });
    let runColours = runs.map((x, k) => colour(k));
    const colourOf = (k) => runColours[k];
    function computeColours() {
      const key = colourBy.value;
      clear(colourKey);
      if (!key) { runColours = runs.map((x, k) => colour(k)); return; }
      const vals = runs.map((x) => num((x.metadata || {})[key]));
      const nums = vals.filter((v) => typeof v === 'number' && Number.isFinite(v));
      if (nums.length && vals.every((v) => v === undefined || typeof v === 'number')) {
        const lo = Math.min(...nums), hi = Math.max(...nums);
        const at = (v) => (hi === lo ? 0.5 : (v - lo) / (hi - lo));
        runColours = vals.map((v) => (typeof v === 'number' && Number.isFinite(v) ? ramp(at(v)) : '#9aa3ad'));
        colourKey.append(h('span', { class: 'mono' }, fmtNum(lo)), h('span', { class: 'ramp', 'aria-hidden': 'true' }), h('span', { class: 'mono' }, fmtNum(hi)));
      } else {
        const cats = [...new Set(vals.filter((v) => v !== undefined).map((v) => fmtValue(v)))].sort();
        runColours = vals.map((v) => (v === undefined ? '#9aa3ad' : colour(cats.indexOf(fmtValue(v)))));
        colourKey.append(...cats.slice(0, 20).map((c, i) => h('span', { class: 'run-chip' }, h('span', { class: 'swatch', style: `background:${colour(i)}` }), c)));
      }
      if (vals.some((v) => v === undefined)) colourKey.append(h('span', { class: 'run-chip' }, h('span', { class: 'swatch', style: 'background:#9aa3ad' }), 'no value'));
    }
    computeColours();
    const grid = h('div', { class: 'charts', id: 'compare-grid' });
    const onlyDiff = h('input', { type: 'checkbox', id: 'only-diff' });
    const diff = h('div', { class: 'table-wrap' });
    view.append(
      h('div', { class: 'row' }, h('label', {}, 'metric ', metricSel), addBtn, chips),
      h('div', { class: 'row' }, h('label', {}, 'x-axis ', axisSel), h('label', {}, logBox, ' log scale'),
        h('label', {}, 'smoothing ', smooth, ' ', smoothOut), h('label', {}, 'colour by ', colourBy), colourKey,
        h('span', { class: 'muted' }, 'Drag to zoom (all charts follow), double-click to reset.')),
      runLegend, grid);

    const charts = new Map(); // metric -> {u, card, raw}
    let syncing = false;
    const save = () => setQuery({ ids: ids.join(','), metrics: [...chosen].join(','), x: axisSel.value === 'step' ? '' : axisSel.value, log: logBox.checked ? '1' : '', smooth: +smooth.value ? smooth.value : '', colour: colourBy.value });
    const extras = []; // compare sections (pages/*.js) with their redraw
    function renderRunLegend() {
      clear(runLegend).append(...runs.map((run, k) => {
        const cb = h('input', { type: 'checkbox', checked: !hidden.has(k), 'data-run': run.id, onchange: () => {
          if (cb.checked) hidden.delete(k); else hidden.add(k);
          for (const c of charts.values()) c.u.setSeries(k + 1, { show: cb.checked });
          for (const x of extras) x.redraw();
        } });
        return h('label', { class: 'run-chip', title: run.name }, cb, h('span', { class: 'swatch', style: `background:${colourOf(k)}` }), labels[k]);
      }));
    }
    function renderChips() {
      clear(chips).append(...[...chosen].map((m) => h('span', { class: 'tag' }, m, ' ', h('button', { type: 'button', class: 'link', 'aria-label': 'remove ' + m, onclick: () => { chosen.delete(m); save(); drawAll(); } }, '×'))));
    }
    function applySmoothing(c) {
      const a = +smooth.value;
      smoothOut.textContent = a ? a.toFixed(2) : 'off';
      const ys = c.raw.slice(1);
      c.u.__raw = a ? ys : null;
      c.u.setData([c.raw[0], ...ys.map((y) => (a ? ema(y, a) : y))], false);
    }
    async function drawAll() {
      for (const c of charts.values()) c.u.destroy();
      charts.clear();
      hooks.charts.clear();
      clear(grid);
      renderChips();
      if (!chosen.size) { grid.append(h('p', { class: 'muted' }, names.length ? 'Pick a metric.' : 'These runs have no metrics.')); return; }
      const t0 = performance.now();
      const axis = axisSel.value, log = logBox.checked;
      const cards = [...chosen].map((m) => { const plot = h('div', { class: 'plot' }); const card = h('div', { class: 'chart', dataset: { metric: m } }, h('div', { class: 'title' }, m), plot); grid.append(card); return { m, card, plot }; });
      const width = Math.max(300, (cards[0].plot.clientWidth || 400));
      // One request per metric, all runs at once (downsampled columns of
      // numbers), three in flight so the server's cores and the drawing overlap.
      let next = 0;
      const worker = async () => {
        while (next < cards.length) {
          const { m, card, plot } = cards[next++];
          const res = await api('/api/ui/metrics/series?' + qs({ runs: ids, metrics: [m], xaxis: axis, max_points: maxPoints(width) }));
          if (!view.isConnected || !chosen.has(m)) return;
          const bad = [];
          const tables = ids.map((i) => { const s = columnSeries((res[m] || {})[i], axis, log); bad.push(s.bad); return [s[0], s[1]]; });
          const data = uPlot.join(tables);
          const opts = chartOpts(width, axis, log, labels, null, runColours);
          const unit = commonUnit(runs, m);
          if (unit) Object.assign(opts.axes[1], { label: unit, labelSize: 18 });
          card.firstChild.textContent = withUnit(m, unit);
          opts.cursor.sync = { key: 'simtrack-compare', setSeries: true };
          opts.hooks.draw = [drawRaw, drawBad];
          // Zoom one chart, the others follow.
          opts.hooks.setScale = [(u, key) => {
            if (key !== 'x' || syncing) return;
            syncing = true;
            for (const c of charts.values()) if (c.u !== u) c.u.setScale('x', { min: u.scales.x.min, max: u.scales.x.max });
            syncing = false;
          }];
          // One-pixel lines: many runs stay apart, and the browser strokes
          // them as hairlines (a 1.5 px stroke of a dense line costs it ~3x).
          opts.series.forEach((s, k) => { if (k > 0) { s.show = !hidden.has(k - 1); s.width = 1; } });
          const u = new uPlot(opts, data, plot);
          setBad(u, bad);
          const c = { u, card, raw: data };
          charts.set(m, c);
          hooks.charts.set(m, u);
          applySmoothing(c);
          plot.addEventListener('dblclick', () => { syncing = true; for (const o of charts.values()) o.u.setScale('x', { min: o.raw[0][0], max: o.raw[0][o.raw[0].length - 1] }); syncing = false; });
        }
      };
      await Promise.all([worker(), worker(), worker()]);
      const first = charts.get([...chosen][0]);
      if (first) hooks.charts.set('compare', first.u);
      hooks.marks.compare = { ms: performance.now() - t0, at: performance.now(), charts: charts.size };
    }
    addBtn.addEventListener('click', () => { if (metricSel.value && !chosen.has(metricSel.value)) { chosen.add(metricSel.value); save(); drawAll(); } });
    metricSel.addEventListener('change', () => { if (chosen.size <= 1) { chosen.clear(); chosen.add(metricSel.value); save(); drawAll(); } });
    axisSel.addEventListener('change', () => { save(); drawAll(); });
    logBox.addEventListener('change', () => { save(); drawAll(); });
    smooth.addEventListener('input', () => { save(); for (const c of charts.values()) applySmoothing(c); });
    colourBy.addEventListener('change', () => { save(); computeColours(); renderRunLegend(); drawAll(); for (const x of extras) x.redraw(); });

    // Parameter plot: a metric's last/min/max against a metadata key.
    const numKeys = metaKeys.filter((k) => runs.some((x) => typeof (x.metadata || {})[k] === 'number'));
    const pKey = h('select', { id: 'param-key' }, numKeys.map((k) => h('option', { value: k }, k)));
    const pMetric = h('select', { id: 'param-metric' }, byCommon.map((n) => h('option', { value: n }, n)));
    const pStat = h('select', { id: 'param-stat' }, ['last', 'min', 'max'].map((s) => h('option', { value: s }, s)));
    const pPlot = h('div', { class: 'chart', id: 'param-plot' });
    let pu = null;
    function drawParam() {
      if (pu) { pu.destroy(); pu = null; }
      clear(pPlot);
      const k = pKey.value, m = pMetric.value, st = pStat.value;
      if (!k || !m) { pPlot.append(h('p', { class: 'muted' }, 'Needs a numeric metadata key and a metric.')); return; }
      const pts = runs.map((x, i) => ({ x: (x.metadata || {})[k], y: ((x.metrics || {})[m] || {})[st], i }))
        .filter((p) => typeof p.x === 'number' && typeof p.y === 'number').sort((a, b) => a.x - b.x);
      const data = [pts.map((p) => p.x), pts.map((p) => p.y)];
      const width = Math.max(300, pPlot.clientWidth - 16);
      pu = new uPlot({
        width, height: 240, title: `${m} (${st}) against ${k}`,
        scales: { x: { time: false } },
        series: [{ label: k, value: (u, v) => fmtNum(v) }, { label: `${m} ${st}`, stroke: colour(0), width: 0, paths: () => null, points: { show: true, size: 9, fill: colour(0) }, value: (u, v) => fmtNum(v) }],
        axes: [{ label: k, space: 70, values: (u, vals) => vals.map(fmtTick) }, { size: axisSize, values: (u, vals) => vals.map(fmtTick) }],
      }, data, pPlot);
      hooks.charts.set('param', pu);
    }
    for (const el of [pKey, pMetric, pStat]) el.addEventListener('change', drawParam);
    view.append(h('h2', {}, 'Parameter plot'),
      h('div', { class: 'row' }, h('label', {}, 'metadata ', pKey), h('label', {}, 'metric ', pMetric), h('label', {}, pStat)), pPlot);

    function renderDiff() {
      const rows = [['status', (x) => x.status], ['folder', (x) => x.folder], ['tags', (x) => (x.tags || []).join(', ')], ['created', (x) => fmtTime(x.created)], ['duration', (x) => fmtDuration(x.runtime)]];
      for (const k of metaKeys) rows.push(['metadata.' + k, (x) => (k in (x.metadata || {}) ? fmtValue(x.metadata[k]) : '—')]);
      const body = rows.map(([k, get]) => {
        const vals = runs.map(get);
        const differs = new Set(vals).size > 1;
        if (onlyDiff.checked && !differs) return null;
        return h('tr', { class: differs ? 'diff' : '' }, h('td', {}, k), vals.map((v) => h('td', { class: 'mono' }, v)));
      });
      clear(diff).append(h('table', { id: 'metadata-diff' }, h('thead', {}, h('tr', {}, h('th', {}, ''), runs.map((x) => h('th', { class: 'clip', title: x.name }, h('a', { href: '#/run/' + encodeURIComponent(x.id) }, x.name))))), h('tbody', {}, body)));
    }
    onlyDiff.addEventListener('change', renderDiff);
    view.append(h('h2', {}, 'Metadata'), h('label', {}, onlyDiff, ' only rows that differ'), diff);
    renderDiff();
    for (const f of compareSections) {
      try {
        const x = f({ runs, labels, metrics: byCommon, colourOf, hidden });
        if (x) { extras.push(x); view.append(x.node); }
      } catch (e) { showError(view, e); }
    }
    renderRunLegend();
    await drawAll();
    drawParam();
  }

  // ---------- folders ----------
  async function foldersPage(r, view) {
    const res = await api('/api/folders?' + qs({ count: 100000 }));
    const folders = new Map(res.data.map((f) => [f.path, f]));
    const paths = new Set(['/']);
    for (const p of folders.keys()) { const parts = p.split('/').filter(Boolean); for (let i = 1; i <= parts.length; i++) paths.add('/' + parts.slice(0, i).join('/')); }
    const current = r.params.get('path') || '/';
    const children = (p) => [...paths].filter((q) => q !== '/' && q.slice(0, q.lastIndexOf('/') || 1) === p).sort();
    const node = (p) => {
      const kids = children(p);
      const name = p === '/' ? '/' : p.slice(p.lastIndexOf('/') + 1);
      return h('li', {}, h('a', { href: '#/folders?path=' + encodeURIComponent(p), class: p === current ? 'active' : '', 'aria-current': p === current ? 'page' : null }, name), kids.length ? h('ul', {}, kids.map(node)) : null);
    };
    const detail = h('div', { class: 'panel', id: 'folder-detail' });
    view.append(h('h1', {}, 'Folders'), h('div', { class: 'folders' }, h('nav', { class: 'panel tree', 'aria-label': 'folder tree' }, h('ul', {}, node('/'))), detail));
    const f = folders.get(current) || { path: current, tags: [], metadata: {} };
    const runs = await api('/api/runs?' + qs({ filters: ['folder.path under ' + current], count: 20, sorting: [{ id: 'created', desc: true }] }));
    detail.append(h('h2', { style: 'margin-top:0', class: 'mono' }, f.path),
      h('p', {}, f.description || h('span', { class: 'muted' }, 'No description.')), h('p', {}, tags(f.tags)),
      h('h2', {}, 'Metadata'), kvTable(f.metadata, 'No metadata.'),
      h('h2', {}, `Runs in this folder and below (${runs.count})`),
      runs.data.length ? h('table', {}, h('tbody', {}, runs.data.map((x) => h('tr', {}, h('td', {}, badge(x.status)), h('td', { class: 'name' }, h('a', { href: '#/run/' + encodeURIComponent(x.id) }, x.name)), h('td', { class: 'clip mono' }, x.folder), h('td', { class: 'num' }, fmtTime(x.created)))))) : h('p', { class: 'muted' }, 'No runs in this folder or below.'),
      h('p', {}, h('a', { href: '#/runs?folder=' + encodeURIComponent(current) }, 'Open these runs in the runs table →')));
  }

  // ---------- alerts ----------
  // ---------- create new run ----------
  // The token the snippets show: the one made here last time while it has
  // more than a day left, else the one signed in with. A new one is minted
  // only when asked for.
  const MINTED_KEY = 'simtrack.solver-token';
  function reusableToken() {
    try {
      const m = JSON.parse((token() ? (localStorage.getItem(TOKEN_KEY) ? localStorage : sessionStorage) : sessionStorage).getItem(MINTED_KEY) || 'null');
      if (m && m.user === user.user && m.exp * 1000 > Date.now() + 86400e3) return { token: m.token, note: `the token created here on ${fmtTime(new Date(m.created).toISOString())}, valid until ${fmtTime(new Date(m.exp * 1000).toISOString())}` };
    } catch { /* ignore a damaged entry */ }
    if (!token()) return { token: 'YOUR_TOKEN', note: 'a placeholder: you signed in with a password, so create a token for the solver below' };
    return { token: token(), note: 'the token you signed in with' };
  }
  function newRunPage(r, view) {
    const days = h('input', { id: 'token-days', type: 'number', min: 1, max: 90, value: 30 });
    const out = h('div', { id: 'new-run-out' });
    const which = h('p', { id: 'token-which', class: 'muted' });
    const btn = h('button', { type: 'submit', id: 'create-token' }, 'Create a new token');
    const form = h('form', { class: 'panel' },
      h('p', {}, 'Your solver needs the server\'s URL and a token. The snippets below use a token you already have; ',
        'you can also create a separate token for the solver (shown once, so copy it). ',
        'It acts as you (', h('strong', { id: 'token-user' }, user.user), '; runs show this name) for at most 90 days and never past your own token\'s expiry.'),
      which,
      h('div', { class: 'row' }, h('label', { class: 'field' }, 'Valid for (days, at most 90)', days), h('span', { class: 'grow' }), btn));
    view.append(h('h1', {}, 'Create new run'), form, out);
    const show = (t) => { which.textContent = 'The snippets use ' + t.note + '.'; renderSnippets(clear(out), location.origin, t.token); };
    show(reusableToken());
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      btn.disabled = true;
      try {
        const res = await api('/api/ui/tokens', { method: 'POST', body: { days: +days.value, label: 'solver (Create new run page)' } });
        (localStorage.getItem(TOKEN_KEY) ? localStorage : sessionStorage).setItem(MINTED_KEY, JSON.stringify({ token: res.token, exp: res.exp, user: user.user, created: Date.now() }));
        show({ token: res.token, note: `a new token, valid for ${res.days} days` });
      } catch (e) { showError(out, e); } finally { btn.disabled = false; }
    });
  }
  function renderSnippets(out, url, tok) {
    const box = (label, id, text) => {
      const b = h('button', { type: 'button', 'data-copy': id }, 'Copy');
      b.addEventListener('click', () => copy(text, b));
      const wrap = text.includes(tok) ? ' wrap' : '';
      return h('div', { class: 'snippet-box' }, h('div', { class: 'row' }, h('strong', {}, label), b), h('pre', { class: 'snippet' + wrap, id }, text));
    };
    out.append(
      h('h2', {}, 'Environment'), box('Shell (bash, zsh; also SLURM job scripts)', 'snippet-env', `export SIMTRACK_URL=${url}\nexport SIMTRACK_TOKEN=${tok}`),
      box('…or simtrack.ini in the run\'s working directory', 'snippet-ini', `[server]\nurl = ${url}\ntoken = ${tok}`),
      h('h2', {}, 'Code'),
      box('C / C++ (my_solver.c)', 'snippet-c', `#include <stdint.h>
#include <stdio.h>
#include <simtrack.h>

int main(void) {
    simtrack_run *run = NULL;
    if (simtrack_init("my-run", "{\\"nx\\": 128}", "cfd,test", "what this run is", "/project", &run) != SIMTRACK_STATUS_OK) {
        char msg[256];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "simtrack: %s\\n", msg); /* the solver carries on */
    }
    double residual = 1.0;
    for (int64_t it = 0; it < 1000; it++) {
        residual *= 0.99; /* one step of your solver */
        simtrack_log(run, "residual", residual, it);
        if (simtrack_abort_requested(run)) {
            simtrack_set_status(run, "terminated");
            break;
        }
    }
    simtrack_event(run, "done");
    simtrack_finish(run);
    return 0;
}
`),
      box('Fortran (my_solver.f90)', 'snippet-fortran', `program my_solver
  use simtrack
  implicit none
  type(simtrack_run) :: run
  integer :: it
  real(8) :: res

  call run%init(name='my-run', folder='/project', tags='cfd,test', metadata='{"nx": 128}')
  res = 1.0d0
  do it = 1, 1000
    res = res * 0.99d0   ! one step of your solver
    call run%log('residual', res, step=it)
    if (run%abort_requested()) exit
  end do
  call run%event('done')
  call run%finish()
end program my_solver
`),
      box('Compile and link (the library installed under $PREFIX)', 'snippet-build', `export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig:$PKG_CONFIG_PATH
cc my_solver.c $(pkg-config --cflags --libs simtrack) -Wl,-rpath,$PREFIX/lib -o my_solver
gfortran my_solver.f90 $(pkg-config --cflags --libs simtrack-fortran) -Wl,-rpath,$PREFIX/lib -o my_solver

# without pkg-config (C):
cc my_solver.c -I$PREFIX/include -L$PREFIX/lib -lsimtrack -Wl,-rpath,$PREFIX/lib -o my_solver`),
      box('CMake', 'snippet-cmake', `find_package(simtrack REQUIRED)
target_link_libraries(my_solver PRIVATE simtrack::simtrack)   # C / C++
target_link_libraries(my_solver PRIVATE simtrack::fortran)    # Fortran`),
      box('Python (the official simvue client)', 'snippet-simvue', `export SIMVUE_URL=${url}\nexport SIMVUE_TOKEN=${tok}`));
  }

  // ---------- extension point ----------
  // Further pages and run-page sections live in their own files under
  // /ui/pages/ (loaded after this one): each calls
  // `simtrack.page(name, fn, navLabel?)` or `simtrack.runSection(fn)`, where
  // a section gets (run, view) and returns a node (or null) placed under the
  // run's charts (`simtrack.runSection(fn, 'system')`: on the System tab).
  const sections = [];
  const compareSections = [];
  function runSections(run, view, tab = 'metrics') {
    const box = h('div', { class: 'run-sections' });
    for (const [f, t] of sections) if (t === tab) { try { const el = f(run, view); if (el) box.append(el); } catch (e) { showError(box, e); } }
    return box;
  }
  window.simtrack = Object.freeze({
    h, clear, api, qs, every, onCleanup, debounce, badge, tags, kvTable, copy, showError, setQuery, parseRoute,
    fmtTime, fmtDuration, fmtNum, fmtBytes, fmtValue, fmtTick, colour, cssVar, hooks, describeAlert, ackControl, route, POLL_MS,
    chartOpts, toSeries, setBad, LIVE, unitOf, commonUnit, withUnit,
    user: () => user,
    page(name, fn, navLabel) {
      PAGES[name] = fn;
      if (navLabel && !document.querySelector(`#nav a[data-page="${name}"]`)) {
        const nav = document.getElementById('nav');
        nav.insertBefore(h('a', { href: '#/' + name, dataset: { page: name } }, navLabel), nav.querySelector('a.primary'));
      }
    },
    runSection(fn, tab = 'metrics') { sections.push([fn, tab]); },
    // fn({runs, labels, metrics, colourOf(k), hidden}) -> {node, redraw()} or null.
    compareSection(fn) { compareSections.push(fn); },
  });
  // The first render waits for the page files after this one to register.
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => route());
  else route();
})();
