// The run page's System tab: CPU, memory and threads against time, drawn
// from the run's `resources/` metrics (logged by the simvue client, by
// `simtrack run` and by the library's resource sampler). One chart per
// kind, each with every matching metric as a line; every resource metric
// is also a chart of its own under Metrics. Drawn when the tab is first
// shown, refreshed while the run is live and the tab is open.
// Test hook: window.__simtrack.resources[kind] is the chart's uPlot.
'use strict';
(() => {
  const { h, api, qs, every, showError, chartOpts, toSeries, POLL_MS, LIVE } = window.simtrack;
  const KINDS = [
    { kind: 'cpu', title: 'CPU and GPU use', unit: '%', test: (n) => /percent/.test(n) },
    { kind: 'memory', title: 'Memory', unit: 'MB', test: (n) => /memory/.test(n) && !/percent/.test(n) },
    { kind: 'threads', title: 'Threads and processes', unit: '', test: (n) => /(^|\.)(threads|processes)$/.test(n) },
  ];
  const hooks = window.__simtrack;
  hooks.resources = {};
  const short = (n) => n.slice('resources/'.length);

  window.simtrack.runSection((run, view) => {
    const grid = h('div', { class: 'charts', id: 'resource-charts' });
    const note = h('p', { class: 'muted', id: 'resources-note' });
    const section = h('section', { class: 'run-resources' }, h('h3', {}, 'Resources over time'), note, grid);
    const charts = new Map(); // kind -> {card, u}
    let loaded = 0, live = LIVE.has(run.status);
    async function load() {
      const [cur, list] = await Promise.all([
        api('/api/runs/' + encodeURIComponent(run.id)),
        api('/api/metrics/names?' + qs({ runs: [run.id] })),
      ]);
      live = LIVE.has(cur.status);
      const names = (Array.isArray(list) ? list : []).filter((n) => n.startsWith('resources/')).sort();
      const want = KINDS.map((k) => ({ ...k, names: names.filter((n) => k.test(short(n))) })).filter((k) => k.names.length);
      note.textContent = want.length ? '' : 'No resource metrics: the run logged no resources/ metrics (the simvue client and `simtrack run` do by default).';
      if (!want.length) return;
      const res = await api('/api/metrics?' + qs({ runs: [run.id], metrics: want.flatMap((k) => k.names), xaxis: 'time', max_points: 1000 }));
      const series = res[run.id] || {};
      for (const k of want) {
        const tables = k.names.map((n) => toSeries(series[n] || [], 'time', false));
        const data = tables.length === 1 ? tables[0] : uPlot.join(tables.map((t) => [t[0], t[1]]));
        let c = charts.get(k.kind);
        if (c && c.u.series.length === k.names.length + 1) { c.u.setData(data); continue; }
        if (c) { c.u.destroy(); c.card.remove(); }
        const plot = h('div', { class: 'plot' });
        const card = h('div', { class: 'chart', dataset: { resource: k.kind } }, h('div', { class: 'title' }, k.unit ? `${k.title} [${k.unit}]` : k.title), plot);
        grid.append(card);
        // Laid out first: the chart is as wide as its place in the grid.
        const width = Math.max(200, Math.floor(plot.clientWidth || card.clientWidth - 16 || 400));
        const opts = chartOpts(width, 'time', false, k.names.map(short));
        for (const s of opts.series.slice(1)) s.spanGaps = true; // joined series leave gaps where others have points
        if (k.unit) Object.assign(opts.axes[1], { label: k.unit, labelSize: 18 });
        opts.hooks = {};
        c = { card, u: new uPlot(opts, data, plot) };
        charts.set(k.kind, c);
        hooks.resources[k.kind] = c.u;
      }
    }
    // Nothing is fetched until the System tab is shown.
    every(view, 500, async () => {
      if (!section.offsetParent) return;
      const now = performance.now();
      if (loaded && !(live && now - loaded > POLL_MS * 2)) return;
      loaded = now;
      try { await load(); } catch (e) { showError(note, e); }
    });
    return section;
  }, 'system');
})();
