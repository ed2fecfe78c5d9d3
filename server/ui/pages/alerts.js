// The Alerts page: the runs that are critical now (running runs only: an
// ended run is not "critical now"; an alert someone acknowledged is listed
// apart, under "Acknowledged", until it clears), and the alert definitions,
// which can be created, edited, enabled or disabled and deleted here.
'use strict';
(() => {
  const { h, clear, api, qs, every, badge, showError, describeAlert, ackControl, route, POLL_MS } = window.simtrack;
  const RULES = ['is above', 'is below', 'is inside range', 'is outside range'];
  const AGGREGATIONS = ['average', 'sum', 'at least one', 'all'];
  const CRITICAL = ['alert.status == critical', 'status == running'];
  const CRITICAL_NOW = ['alert.acknowledged == false', 'status == running'];

  // The form for a new alert (`a` undefined) or an existing one.
  function alertForm(a, done) {
    const d = (a && a.alert) || {};
    const field = (label, el, hint) => h('label', { class: 'field' }, label, el, hint ? h('span', { class: 'muted' }, hint) : null);
    const name = h('input', { id: 'alert-name', required: true, value: a ? a.name : '' });
    const description = h('input', { id: 'alert-description', value: (a && a.description) || '' });
    const source = h('select', { id: 'alert-source', disabled: !!a }, ['metrics', 'events', 'user'].map((x) => h('option', { value: x }, x)));
    source.value = a ? a.source : 'metrics';
    const metric = h('input', { id: 'alert-metric', value: d.metric || '', placeholder: 'residual' });
    const rule = h('select', { id: 'alert-rule' }, RULES.map((x) => h('option', { value: x }, x)));
    rule.value = d.rule || 'is above';
    const threshold = h('input', { id: 'alert-threshold', type: 'number', step: 'any', value: d.threshold ?? '' });
    const low = h('input', { id: 'alert-low', type: 'number', step: 'any', value: d.range_low ?? '' });
    const high = h('input', { id: 'alert-high', type: 'number', step: 'any', value: d.range_high ?? '' });
    const aggregation = h('select', { id: 'alert-aggregation' }, AGGREGATIONS.map((x) => h('option', { value: x }, x)));
    aggregation.value = d.aggregation || 'average';
    const windowMin = h('input', { id: 'alert-window', type: 'number', step: 'any', min: 0, value: d.window ?? 5 });
    const frequency = h('input', { id: 'alert-frequency', type: 'number', step: 'any', min: 0, value: d.frequency ?? 1 });
    const pattern = h('input', { id: 'alert-pattern', value: d.pattern || '', placeholder: 'diverged' });
    const notification = h('select', { id: 'alert-notification' }, ['none', 'email'].map((x) => h('option', { value: x }, x)));
    notification.value = (a && a.notification) || 'none';
    const abort = h('input', { type: 'checkbox', id: 'alert-abort', checked: !!(a && a.abort) });
    const enabled = h('input', { type: 'checkbox', id: 'alert-enabled', checked: a ? a.enabled : true });
    const err = h('div', { role: 'alert' });
    const metricBox = h('div', { class: 'filters' }, field('Metric', metric), field('Rule', rule),
      h('span', { class: 'one' }, field('Threshold', threshold)), h('span', { class: 'range' }, field('Low', low), field('High', high)),
      field('Aggregation', aggregation), field('Window (minutes)', windowMin), field('Checked every (minutes)', frequency));
    const eventBox = h('div', { class: 'filters' }, field('Event message contains', pattern), field('Window (minutes)', windowMin.cloneNode()), field('Checked every (minutes)', frequency.cloneNode()));
    const evWindow = eventBox.querySelectorAll('input')[1], evFreq = eventBox.querySelectorAll('input')[2];
    evWindow.id = 'alert-ev-window'; evFreq.id = 'alert-ev-frequency';
    evWindow.value = d.window ?? 5; evFreq.value = d.frequency ?? 1;
    const sync = () => {
      metricBox.hidden = source.value !== 'metrics';
      eventBox.hidden = source.value !== 'events';
      const range = rule.value.endsWith('range');
      metricBox.querySelector('.one').hidden = range;
      metricBox.querySelector('.range').hidden = !range;
    };
    source.addEventListener('change', sync);
    rule.addEventListener('change', sync);
    sync();
    const form = h('form', { class: 'panel', id: 'alert-form' },
      h('h2', { style: 'margin-top:0' }, a ? `Edit alert "${a.name}"` : 'New alert'),
      h('div', { class: 'filters' }, field('Name', name), field('Description', description), field('Source', source, a ? 'fixed once created' : null), field('Notification', notification)),
      metricBox, eventBox,
      h('div', { class: 'row' }, h('label', {}, enabled, ' enabled'), h('label', {}, abort, ' abort the run when critical')),
      h('div', { class: 'row' }, h('button', { class: 'primary', type: 'submit', id: 'alert-save' }, a ? 'Save' : 'Create'),
        h('button', { type: 'button', onclick: () => done(false) }, 'Cancel')), err);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clear(err);
      const numOrNull = (el) => (el.value === '' ? null : Number(el.value));
      let def = null;
      if (source.value === 'metrics') {
        def = { metric: metric.value.trim(), rule: rule.value, aggregation: aggregation.value, window: numOrNull(windowMin), frequency: numOrNull(frequency) };
        if (rule.value.endsWith('range')) Object.assign(def, { range_low: numOrNull(low), range_high: numOrNull(high) });
        else def.threshold = numOrNull(threshold);
      } else if (source.value === 'events') {
        def = { pattern: pattern.value, window: numOrNull(evWindow), frequency: numOrNull(evFreq) };
      }
      const body = { name: name.value.trim(), description: description.value, notification: notification.value, enabled: enabled.checked, abort: abort.checked };
      if (def) body.alert = def;
      try {
        if (a) await api('/api/alerts/' + encodeURIComponent(a.id), { method: 'PUT', body });
        else await api('/api/alerts', { method: 'POST', body: { ...body, source: source.value } });
        done(true);
      } catch (e) { showError(err, e); }
    });
    return form;
  }

  async function alertsPage(r, view) {
    const [alerts, anyCritical] = await Promise.all([
      api('/api/alerts?' + qs({ count: 10000 })),
      api('/api/runs?' + qs({ filters: CRITICAL, count: 1000 })),
    ]);
    const open_ = (x) => (x.alerts || []).filter((a) => a.status === 'critical' && !a.acknowledged);
    const critical = anyCritical.data.filter((x) => open_(x).length);
    const acked = anyCritical.data.filter((x) => !open_(x).length);
    const ackMsg = h('span', { class: 'muted', role: 'status' });
    const alertBadges = (x) => (x.alerts || []).filter((a) => a.status === 'critical').map((a) =>
      h('span', { class: 'crit-alert', 'data-alert': a.alert.id }, h('span', { class: 'badge critical' }, a.alert.name), ' ', ackControl(x, a, route, ackMsg), ' '));
    const runRows = (list, id) => h('div', { class: 'table-wrap' }, h('table', { id }, h('tbody', {}, list.map((x) => h('tr', { 'data-run': x.id }, h('td', {}, badge(x.status)),
      h('td', { class: 'name' }, h('a', { href: '#/run/' + encodeURIComponent(x.id) }, x.name)), h('td', {}, alertBadges(x)))))));
    const byAlert = new Map();
    for (const run of anyCritical.data) for (const a of run.alerts || []) if (a.status === 'critical') {
      if (!byAlert.has(a.alert.id)) byAlert.set(a.alert.id, []);
      byAlert.get(a.alert.id).push(run);
    }
    const formHolder = h('div');
    const open = (a) => {
      clear(formHolder).append(alertForm(a, (saved) => { clear(formHolder); if (saved) route(); }));
      formHolder.querySelector('input').focus();
    };
    const rowFor = (a) => {
      const msg = h('span', { class: 'muted', role: 'status' });
      const act = async (f) => { try { await f(); route(); } catch (e) { clear(msg); showError(msg, e); } };
      return h('tr', { 'data-alert': a.id },
        h('td', { class: 'name' }, a.name, a.description ? h('div', { class: 'muted' }, a.description) : null),
        h('td', {}, describeAlert(a)), h('td', {}, a.enabled ? 'yes' : 'no'), h('td', {}, a.abort ? 'yes' : 'no'), h('td', {}, a.notification),
        h('td', {}, (byAlert.get(a.id) || []).map((x) => h('div', {}, h('a', { href: '#/run/' + encodeURIComponent(x.id) }, x.name)))),
        h('td', { class: 'actions' },
          h('button', { type: 'button', class: 'link', 'data-action': 'edit', onclick: () => open(a) }, 'edit'), ' ',
          h('button', { type: 'button', class: 'link', 'data-action': 'toggle', onclick: () => act(() => api('/api/alerts/' + encodeURIComponent(a.id), { method: 'PUT', body: { enabled: !a.enabled } })) }, a.enabled ? 'disable' : 'enable'), ' ',
          h('button', { type: 'button', class: 'link danger', 'data-action': 'delete', onclick: () => { if (confirm(`Delete alert "${a.name}"? Runs stop being checked against it.`)) act(() => api('/api/alerts/' + encodeURIComponent(a.id), { method: 'DELETE' })); } }, 'delete'),
          msg));
    };
    view.append(h('div', { class: 'row' }, h('h1', { class: 'grow' }, 'Alerts'), h('button', { type: 'button', class: 'primary', id: 'new-alert', onclick: () => open() }, 'New alert')),
      formHolder,
      h('h2', { id: 'critical-now' }, `Critical now (${critical.length} running run${critical.length === 1 ? '' : 's'})`),
      critical.length ? runRows(critical, 'critical-runs') : h('p', { class: 'muted' }, 'No running run is critical.'), ackMsg,
      ...(acked.length ? [h('h2', {}, `Acknowledged (${acked.length})`), h('p', { class: 'muted' }, 'Still critical, but seen: they notify nothing more until they clear and fire again.'), runRows(acked, 'acknowledged-runs')] : []),
      h('h2', {}, `Definitions (${alerts.count})`),
      h('div', { class: 'table-wrap' }, h('table', { id: 'alert-defs' },
        h('thead', {}, h('tr', {}, ['Name', 'Rule', 'Enabled', 'Aborts run', 'Notification', 'Critical runs', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, alerts.data.map(rowFor)))));
    every(view, POLL_MS * 3, async () => {
      if (formHolder.childElementCount) return; // never re-render under a form being filled in
      const [n, all] = await Promise.all([api('/api/runs?' + qs({ filters: CRITICAL_NOW, count: 1 })), api('/api/runs?' + qs({ filters: CRITICAL, count: 1 }))]);
      if (n.count !== critical.length || all.count !== anyCritical.count) route();
    });
  }
  window.simtrack.page('alerts', alertsPage);
})();
