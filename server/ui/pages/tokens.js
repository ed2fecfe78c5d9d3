// Tokens: create (label, lifetime, read-only), list and revoke one's own API
// tokens and sign-in sessions; administrators can list and revoke everyone's.
(() => {
  'use strict';
  const { h, clear, api, fmtTime, showError } = window.simtrack;

  async function tokensPage(r, view) {
    const me = window.simtrack.user();
    const label = h('input', { id: 'new-token-label', placeholder: 'e.g. cluster job', maxlength: 200 });
    const days = h('input', { id: 'new-token-days', type: 'number', min: 1, max: 90, value: 30 });
    const ro = h('input', { id: 'new-token-ro', type: 'checkbox' });
    const made = h('div', { id: 'new-token-out' });
    const form = h('form', { class: 'panel', id: 'new-token' },
      h('h2', {}, 'Create a token'),
      h('div', { class: 'row' },
        h('label', { class: 'field' }, 'Label', label),
        h('label', { class: 'field' }, 'Valid for (days, at most 90)', days),
        h('label', {}, ro, ' Read-only'),
        h('span', { class: 'grow' }),
        h('button', { class: 'primary', type: 'submit', id: 'new-token-create' }, 'Create')),
      made);
    const all = h('input', { id: 'tokens-all', type: 'checkbox' });
    const list = h('div', { id: 'tokens-list' });
    view.append(h('h1', {}, 'Tokens'), form,
      me.admin ? h('label', {}, all, ' Everyone\'s tokens (administrator)') : '',
      list);
    async function load() {
      const res = await api('/api/ui/tokens' + (all.checked ? '?all=true' : ''));
      clear(list).append(h('table', { class: 'grid', id: 'tokens-table' },
        h('thead', {}, h('tr', {}, ['User', 'Label', 'Scope', 'Created', 'Last used', 'Expires', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, res.data.map((t) => {
          const b = h('button', { type: 'button', class: 'danger', 'data-revoke': t.id, disabled: t.current }, t.current ? 'in use' : 'Revoke');
          b.addEventListener('click', async () => {
            if (!confirm(`Revoke the token "${t.label || t.id}"? Programs using it stop at once.`)) return;
            try { await api('/api/ui/tokens/' + encodeURIComponent(t.id), { method: 'DELETE' }); await load(); } catch (e) { showError(list, e); }
          });
          return h('tr', { dataset: { token: t.id } },
            h('td', {}, t.user), h('td', {}, t.label || '—'), h('td', {}, t.scope),
            h('td', {}, fmtTime(t.created)), h('td', {}, t.last_used ? fmtTime(t.last_used) : 'never'),
            h('td', { class: t.expired ? 'muted' : '' }, fmtTime(t.exp) + (t.expired ? ' (expired)' : '')), h('td', {}, b));
        }))));
    }
    all.addEventListener('change', () => load().catch((e) => showError(list, e)));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clear(made);
      try {
        const t = await api('/api/ui/tokens', { method: 'POST', body: { label: label.value.trim(), days: +days.value, read_only: ro.checked } });
        const pre = h('pre', { class: 'snippet wrap', id: 'new-token-secret' }, t.token);
        const copy = h('button', { type: 'button' }, 'Copy');
        copy.addEventListener('click', () => window.simtrack.copy(t.token, copy));
        made.append(h('p', {}, `Token "${t.label || t.id}" (${t.scope}, until ${fmtTime(t.exp)}). It is shown only now: copy it.`), h('div', { class: 'row' }, pre, copy));
        label.value = '';
        await load();
      } catch (e) { showError(made, e); }
    });
    await load();
  }
  window.simtrack.page('tokens', tokensPage, 'Tokens');
})();
