// Notifications: the signed-in user's channels (email addresses and
// webhooks) with the last delivery of each, recent deliveries, and a small
// "Notifications" section on the run page with that run's deliveries.
'use strict';
(() => {
  const { h, clear, api, showError, fmtTime, every } = window.simtrack;
  const STATUS = { sent: 'completed', retrying: 'running', pending: 'created', failed: 'failed' };
  const EVENT_TEXT = { critical: 'alert critical', ok: 'alert back to ok', failed: 'run failed', lost: 'run lost', completed: 'run completed' };

  const statusBadge = (d) => h('span', { class: 'badge ' + (STATUS[d.status] || ''), title: d.error || '' }, d.status);
  function deliveryCell(d) {
    if (!d) return h('span', { class: 'muted' }, 'none yet');
    const when = d.status === 'sent' ? fmtTime(d.sent) : d.next_attempt ? 'next try ' + fmtTime(d.next_attempt) : fmtTime(d.created);
    return h('span', { class: 'delivery' }, statusBadge(d), ' ', h('span', { class: 'muted' }, when),
      d.error ? h('div', { class: 'error-text mono' }, `after ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}: ${d.error}`) : null);
  }
  function deliveriesTable(list, id, withRun) {
    if (!list.length) return h('p', { class: 'muted', id }, 'No notification sent yet.');
    return h('div', { class: 'table-wrap' }, h('table', { id },
      h('thead', {}, h('tr', {}, ['When', 'Event', withRun ? 'Run' : null, 'To', 'Status', 'Attempts', 'Last error'].filter(Boolean).map((t) => h('th', {}, t)))),
      h('tbody', {}, list.map((d) => h('tr', { dataset: { status: d.status } },
        h('td', {}, fmtTime(d.created)),
        h('td', {}, d.title || EVENT_TEXT[d.event] || d.event),
        withRun ? h('td', {}, h('a', { href: '#/run/' + encodeURIComponent(d.run) }, 'open')) : null,
        h('td', { class: 'mono' }, d.via ? `${d.via.kind} ${d.via.target}` : h('span', { class: 'muted' }, 'removed channel')),
        h('td', {}, statusBadge(d)),
        h('td', {}, String(d.attempts)),
        h('td', { class: 'mono' }, d.error || ''))))));
  }

  async function notificationsPage(r, view) {
    const data = await api('/api/ui/notifications');
    const kind = h('select', { id: 'channel-kind' }, h('option', { value: 'email' }, 'Email'), h('option', { value: 'webhook' }, 'Webhook'));
    const target = h('input', { id: 'channel-target', type: 'text', required: true, placeholder: 'you@example.org', size: 40 });
    const format = h('select', { id: 'channel-format', disabled: true }, data.formats.map((f) => h('option', { value: f }, f === 'slack' ? 'Slack / Mattermost' : 'JSON')));
    const boxes = data.events.map((e) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: e, checked: data.default_events.includes(e) }), ' ', EVENT_TEXT[e] || e));
    kind.addEventListener('change', () => {
      const hook = kind.value === 'webhook';
      format.disabled = !hook;
      target.placeholder = hook ? 'https://hooks.example.org/...' : 'you@example.org';
    });
    const out = h('div', {});
    const add = h('button', { type: 'submit', id: 'channel-add' }, 'Add');
    const form = h('form', { class: 'panel', id: 'channel-form' },
      h('div', { class: 'row' }, h('label', { class: 'field' }, 'Kind', kind), h('label', { class: 'field grow' }, 'Address or URL', target), h('label', { class: 'field' }, 'Body', format)),
      h('div', { class: 'row' }, h('span', {}, 'Tell me when: '), boxes, h('span', { class: 'grow' }), add), out);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      add.disabled = true;
      clear(out);
      try {
        const body = { kind: kind.value, target: target.value, events: boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value) };
        if (kind.value === 'webhook') body.format = format.value;
        await api('/api/ui/notifications', { method: 'POST', body });
        target.value = '';
        await render();
      } catch (e) { showError(out, e); } finally { add.disabled = false; }
    });
    const channels = h('div', { id: 'channels' });
    const recent = h('div', { id: 'recent-deliveries' });
    async function render(fresh) {
      const d = fresh || await api('/api/ui/notifications');
      clear(channels);
      clear(recent);
      channels.append(d.channels.data.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'channel-list' },
        h('thead', {}, h('tr', {}, ['Kind', 'Address or URL', 'Events', 'Last delivery', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, d.channels.data.map((c) => {
          const rm = h('button', { type: 'button', class: 'danger', 'data-remove': c.id }, 'Remove');
          rm.addEventListener('click', async () => {
            if (!confirm(`Stop notifying ${c.target}?`)) return;
            try { await api('/api/ui/notifications/' + encodeURIComponent(c.id), { method: 'DELETE' }); await render(); } catch (e) { showError(channels, e); }
          });
          return h('tr', { dataset: { channel: c.id } },
            h('td', {}, c.kind === 'webhook' ? `webhook (${c.format === 'slack' ? 'Slack' : 'JSON'})` : 'email'),
            h('td', { class: 'mono name' }, c.target),
            h('td', {}, (c.events || []).map((e) => EVENT_TEXT[e] || e).join(', ')),
            h('td', {}, deliveryCell(c.last_delivery)),
            h('td', {}, rm));
        })))) : h('p', { class: 'muted' }, 'No channel yet: add an email address or a webhook below.'));
      recent.append(deliveriesTable(d.deliveries.data, 'delivery-list', true));
    }
    view.append(h('h1', {}, 'Notifications'),
      h('p', { class: 'muted' }, 'Where you (', h('strong', {}, data.user), ') are told when one of your runs fails or is marked lost, ',
        'or when an alert whose notification is "email" turns critical on it.'),
      h('h2', {}, 'Channels'), channels, form, h('h2', {}, 'Recent deliveries'), recent);
    await render(data);
    every(view, 5000, () => render());
  }

  function runNotifications(run, view) {
    const box = h('section', { class: 'panel run-notifications', id: 'run-notifications' }, h('h2', { style: 'margin-top: 0' }, 'Notifications'));
    const body = h('div', {});
    box.append(body);
    const load = async () => {
      const d = await api('/api/ui/runs/' + encodeURIComponent(run.id) + '/notifications');
      clear(body);
      body.append(d.data.length ? deliveriesTable(d.data, 'run-delivery-list', false)
        : h('p', { class: 'muted' }, 'No notification about this run. ', h('a', { href: '#/notifications' }, 'Notification settings')));
    };
    load().catch((e) => showError(body, e));
    every(view, 5000, load);
    return box;
  }

  window.simtrack.page('notifications', notificationsPage, 'Notifications');
  window.simtrack.runSection(runNotifications);
})();
