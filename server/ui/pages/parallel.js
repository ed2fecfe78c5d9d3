// Parallel coordinates on the Compare page: one vertical axis per chosen
// metadata key or metric summary, one polyline per run, coloured like the
// run's lines in the charts above. Dragging along an axis brushes a range;
// runs outside every brush fade, and the count of matching runs is shown.
// Double-click an axis to clear its brush. Drawn as SVG, so it stays crisp
// and its lines can be inspected by tests (window.__simtrack.parallel).
'use strict';
(() => {
  const { h, clear, fmtTick, hooks } = window.simtrack;
  const SVG = 'http://www.w3.org/2000/svg';
  const svg = (tag, attrs, ...kids) => {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, v);
    for (const kid of kids.flat()) if (kid) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return el;
  };
  const finite = (v) => typeof v === 'number' && Number.isFinite(v);

  // An axis: a label and a function run -> value (number, string or undefined).
  function axesFor(runs, metrics) {
    const out = [];
    const keys = [...new Set(runs.flatMap((r) => Object.keys(r.metadata || {})))].sort();
    for (const k of keys) {
      const vals = runs.map((r) => (r.metadata || {})[k]);
      if (!vals.some((v) => v !== undefined && v !== null && typeof v !== 'object')) continue;
      out.push({ id: 'metadata.' + k, label: k, get: (r) => (r.metadata || {})[k], kind: 'metadata' });
    }
    for (const m of metrics) {
      for (const st of ['last', 'min', 'max']) {
        out.push({ id: `${m}.${st}`, label: `${m} (${st})`, get: (r) => ((r.metrics || {})[m] || {})[st], kind: 'metric', stat: st });
      }
    }
    return out;
  }

  // Scale of one axis over the runs' values: numeric (min..max) when every
  // present value is a number, otherwise categorical (sorted distinct values).
  function scaleOf(axis, runs) {
    const vals = runs.map(axis.get).filter((v) => v !== undefined && v !== null);
    const nums = vals.map((v) => (typeof v === 'string' && /^(-?Infinity|NaN)$/.test(v) ? Number(v) : v));
    if (nums.length && nums.every((v) => typeof v === 'number')) {
      const f = nums.filter(finite);
      let lo = f.length ? Math.min(...f) : 0, hi = f.length ? Math.max(...f) : 1;
      if (lo === hi) { lo -= Math.abs(lo) * 0.5 || 0.5; hi += Math.abs(hi) * 0.5 || 0.5; }
      return { numeric: true, lo, hi, pos: (v) => (finite(v) ? (v - lo) / (hi - lo) : null), ticks: [lo, (lo + hi) / 2, hi].map(fmtTick) };
    }
    const cats = [...new Set(vals.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))))].sort();
    const at = new Map(cats.map((c, i) => [c, cats.length === 1 ? 0.5 : i / (cats.length - 1)]));
    return { numeric: false, cats, pos: (v) => (v === undefined || v === null ? null : at.get(typeof v === 'object' ? JSON.stringify(v) : String(v)) ?? null), ticks: cats };
  }

  window.simtrack.compareSection((ctx) => {
    const { runs, metrics, colourOf, labels } = ctx;
    const all = axesFor(runs, metrics);
    if (!all.length) return null;
    // Default: up to five metadata keys that differ between the runs, then
    // the last value of each chosen metric.
    const differs = (a) => new Set(runs.map((r) => JSON.stringify(a.get(r) ?? null))).size > 1;
    const chosen = new Set([
      ...all.filter((a) => a.kind === 'metadata' && differs(a)).slice(0, 5).map((a) => a.id),
      ...all.filter((a) => a.kind === 'metric' && a.stat === 'last' && !a.id.startsWith('resources/')).slice(0, 3).map((a) => a.id),
    ]);
    const brushes = new Map(); // axis id -> [lo, hi] in 0..1 (0 = bottom)
    const picker = h('details', { class: 'axis-picker' }, h('summary', {}, 'Axes'),
      h('div', { class: 'axis-list' }, all.map((a) => h('label', {}, h('input', {
        type: 'checkbox', 'data-axis': a.id, checked: chosen.has(a.id),
        onchange: (e) => { if (e.target.checked) chosen.add(a.id); else { chosen.delete(a.id); brushes.delete(a.id); } draw(); },
      }), ' ', a.label))));
    const count = h('span', { class: 'muted', id: 'parallel-count', role: 'status' });
    const holder = h('div', { class: 'parallel', id: 'parallel-plot' });
    const box = h('section', {}, h('h2', {}, 'Parallel coordinates'),
      h('div', { class: 'row' }, picker, count, h('span', { class: 'muted' }, 'Drag along an axis to select a range; double-click it to clear.')), holder);

    function draw() {
      const axes = all.filter((a) => chosen.has(a.id));
      clear(holder);
      if (axes.length < 2) { holder.append(h('p', { class: 'muted' }, 'Pick at least two axes.')); count.textContent = ''; return; }
      const W = Math.max(360, holder.clientWidth || 800), H = 300, top = 34, bottom = 26, left = 50, right = 50;
      const gap = (W - left - right) / (axes.length - 1);
      const y = (p) => top + (1 - p) * (H - top - bottom);
      const scales = axes.map((a) => scaleOf(a, runs));
      const root = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'parallel coordinates' });
      const lines = svg('g', { class: 'lines' });
      root.append(lines);
      const inBrush = (run) => axes.every((a, i) => {
        const b = brushes.get(a.id);
        if (!b) return true;
        const p = scales[i].pos(a.get(run));
        return p !== null && p >= b[0] && p <= b[1];
      });
      const model = [];
      let matching = 0;
      runs.forEach((run, k) => {
        if (ctx.hidden.has(k)) return;
        const ps = axes.map((a, i) => scales[i].pos(a.get(run)));
        const ok = inBrush(run);
        if (ok) matching++;
        model.push({ id: run.id, values: axes.map((a) => a.get(run) ?? null), match: ok });
        // Segments only between axes where the run has values: a missing
        // value breaks the line rather than inventing one.
        let d = '';
        ps.forEach((p, i) => { if (p === null) return; d += (i && ps[i - 1] !== null ? 'L' : 'M') + (left + i * gap).toFixed(1) + ' ' + y(p).toFixed(1); });
        const path = svg('path', { d, fill: 'none', stroke: colourOf(k), 'stroke-width': ok ? 2 : 1, 'stroke-opacity': ok ? 0.9 : 0.12, 'data-run': run.id },
          svg('title', {}, labels[k]));
        lines.append(path);
      });
      axes.forEach((a, i) => {
        const x = left + i * gap, s = scales[i];
        const g = svg('g', { class: 'axis', 'data-axis': a.id });
        g.append(svg('line', { x1: x, x2: x, y1: top, y2: H - bottom, stroke: 'currentColor', 'stroke-opacity': 0.6 }));
        const anchor = i === 0 ? 'start' : i === axes.length - 1 ? 'end' : 'middle';
        g.append(svg('text', { x, y: 14, 'text-anchor': anchor, class: 'axis-label' }, a.label.length > 28 ? a.label.slice(0, 26) + '…' : a.label, svg('title', {}, a.label)));
        const ticks = s.numeric ? s.ticks.map((t, j) => [t, j / 2]) : s.cats.slice(0, 12).map((c) => [c.length > 14 ? c.slice(0, 13) + '…' : c, s.pos(c)]);
        // Tick labels right of the axis, left of the last one (inside the plot).
        const last = i === axes.length - 1;
        for (const [t, p] of ticks) g.append(svg('text', { x: last ? x - 4 : x + 4, y: y(p) + 4, class: 'tick', 'text-anchor': last ? 'end' : 'start' }, t));
        const b = brushes.get(a.id);
        if (b) g.append(svg('rect', { x: x - 7, y: y(b[1]), width: 14, height: Math.max(2, y(b[0]) - y(b[1])), class: 'brush' }));
        // A wide transparent strip takes the drags.
        const hit = svg('rect', { x: x - 12, y: top - 4, width: 24, height: H - top - bottom + 8, fill: 'transparent', style: 'cursor: ns-resize' });
        hit.addEventListener('pointerdown', (ev) => {
          ev.preventDefault();
          const rect = root.getBoundingClientRect();
          const toP = (cy) => Math.min(1, Math.max(0, 1 - (cy - rect.top - top) / (H - top - bottom)));
          const start = toP(ev.clientY);
          const move = (e) => { const p = toP(e.clientY); brushes.set(a.id, [Math.min(start, p), Math.max(start, p)]); draw(); };
          const up = (e) => { window.removeEventListener('pointermove', move); window.removeEventListener('pointerup', up); if (Math.abs(toP(e.clientY) - start) < 0.01) brushes.delete(a.id); draw(); };
          window.addEventListener('pointermove', move);
          window.addEventListener('pointerup', up);
        });
        hit.addEventListener('dblclick', () => { brushes.delete(a.id); draw(); });
        g.append(hit);
        root.append(g);
      });
      holder.append(root);
      count.textContent = `${matching} of ${model.length} runs in the selected ranges`;
      hooks.parallel = { axes: axes.map((a) => a.id), runs: model, brushes: Object.fromEntries(brushes) };
    }
    // Drawn once the section is in the page (it needs its width).
    requestAnimationFrame(draw);
    return { node: box, redraw: draw };
  });
})();
