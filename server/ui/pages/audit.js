// Audit: the security-relevant actions (sign-ins, tokens, user changes,
// deletes, aborts, visibility changes), newest first; administrators only.
(() => {
  'use strict';
  const { h, clear, api, fmtTime } = window.simtrack;

  async function auditPage(r, view) {
    const me = window.simtrack.user();
    view.append(h('h1', {}, 'Audit trail'));
    if (!me.admin) { view.append(h('p', { class: 'muted' }, 'Only administrators can read the audit trail.')); return; }
    const box = h('div', { id: 'audit-list' });
    const more = h('button', { type: 'button', id: 'audit-more' }, 'Older entries');
    view.append(box, more);
    let before = null;
    const tbody = h('tbody', {});
    box.append(h('table', { class: 'grid', id: 'audit-table' },
      h('thead', {}, h('tr', {}, ['When', 'Who', 'Action', 'Target', 'From', 'Detail'].map((t) => h('th', {}, t)))), tbody));
    async function load() {
      const res = await api('/api/audit?' + new URLSearchParams(before ? { before, count: 200 } : { count: 200 }));
      for (const a of res.data) {
        tbody.append(h('tr', { dataset: { action: a.action } }, h('td', {}, fmtTime(a.ts)), h('td', {}, a.actor || '—'),
          h('td', {}, a.action), h('td', {}, a.target), h('td', {}, a.ip), h('td', { class: 'muted' }, a.detail)));
        before = a.seq;
      }
      more.hidden = res.data.length < 200;
    }
    more.addEventListener('click', () => load());
    clear(tbody);
    await load();
  }
  // The nav link is added for administrators only, once we know who we are.
  window.simtrack.page('audit', auditPage);
  const addLink = () => {
    const me = window.simtrack.user();
    if (me && me.admin && !document.querySelector('#nav a[data-page="audit"]')) {
      const nav = document.getElementById('nav');
      const a = document.createElement('a');
      a.href = '#/audit'; a.dataset.page = 'audit'; a.textContent = 'Audit';
      nav.insertBefore(a, nav.querySelector('a.primary'));
    }
  };
  window.addEventListener('hashchange', () => setTimeout(addLink, 0));
  setInterval(addLink, 1000);
})();
