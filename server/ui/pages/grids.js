// Array (grid) metrics on the run page: a 1-D field as a line over its axis,
// a 2-D field as a heat map with a colour scale; a step slider and a play
// button; both follow new steps while the run runs. Registered with
// simtrack.runSection. Test hook: window.__simtrack.grids[metric] holds what
// is drawn (step, shape, the values, the colour scale and the plot box).
(() => {
  'use strict';
  const { h, api, every, showError, fmtNum, cssVar, hooks } = window.simtrack;
  const enc = encodeURIComponent;
  hooks.grids = {};

  // A perceptual blue→yellow scale (viridis stops), linear between stops.
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function colourOf(v, lo, hi) {
    if (!Number.isFinite(v)) return [128, 128, 128];
    let t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    t = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
    const k = Math.min(STOPS.length - 2, Math.floor(t)), f = t - k;
    return STOPS[k].map((c, i) => Math.round(c + (STOPS[k + 1][i] - c) * f));
  }

  function axisTitle(def, i) {
    const label = (def.labels && def.labels[i]) || `axis ${i}`;
    const unit = def.units && def.units[i];
    return unit ? `${label} [${unit}]` : label;
  }

  function setupCanvas(canvas, w, hgt) {
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(hgt * dpr);
    canvas.style.width = w + 'px'; canvas.style.height = hgt + 'px';
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  const W = 400, H = 260, M = { l: 62, r: 10, t: 10, b: 40 };

  function drawLine(canvas, def, values, lo, hi) {
    const ctx = setupCanvas(canvas, W, H);
    const xs = def.grid[0];
    const x0 = Math.min(xs[0], xs[xs.length - 1]), x1 = Math.max(xs[0], xs[xs.length - 1]);
    const pw = W - M.l - M.r, ph = H - M.t - M.b;
    const span = hi > lo ? hi - lo : 1;
    const X = (x) => M.l + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * pw;
    const Y = (y) => M.t + ph - ((y - lo) / span) * ph;
    ctx.fillStyle = cssVar('--panel') || '#fff'; ctx.fillRect(0, 0, W, H);
    ctx.strokeStyle = cssVar('--line') || '#ccc'; ctx.strokeRect(M.l, M.t, pw, ph);
    ctx.fillStyle = cssVar('--muted') || '#666'; ctx.font = '11px sans-serif';
    for (let k = 0; k <= 4; k++) {
      const yv = lo + (span * k) / 4, xv = x0 + ((x1 - x0) * k) / 4;
      ctx.textAlign = 'right'; ctx.fillText(fmtNum(yv), M.l - 4, Y(yv) + 4);
      ctx.textAlign = 'center'; ctx.fillText(fmtNum(xv), X(xv), M.t + ph + 14);
    }
    ctx.fillText(axisTitle(def, 0), M.l + pw / 2, H - 6);
    ctx.strokeStyle = cssVar('--accent') || '#2563eb'; ctx.lineWidth = 1.5; ctx.beginPath();
    let pen = false;
    values.forEach((v, i) => {
      if (!Number.isFinite(v)) { pen = false; return; }
      if (pen) ctx.lineTo(X(xs[i]), Y(v)); else ctx.moveTo(X(xs[i]), Y(v));
      pen = true;
    });
    ctx.stroke();
    return { x: M.l, y: M.t, w: pw, h: ph };
  }

  function drawHeat(canvas, def, values, shape, lo, hi) {
    const [ny, nx] = shape;
    const ctx = setupCanvas(canvas, W, H);
    const pw = W - M.l - M.r - 56, ph = H - M.t - M.b;
    ctx.fillStyle = cssVar('--panel') || '#fff'; ctx.fillRect(0, 0, W, H);
    // One pixel per cell, scaled up without smoothing: cells stay crisp.
    const img = new ImageData(nx, ny);
    for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
      const c = colourOf(values[j * nx + i], lo, hi), o = ((ny - 1 - j) * nx + i) * 4; // y up
      img.data[o] = c[0]; img.data[o + 1] = c[1]; img.data[o + 2] = c[2]; img.data[o + 3] = 255;
    }
    const off = document.createElement('canvas'); off.width = nx; off.height = ny;
    off.getContext('2d').putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, M.l, M.t, pw, ph);
    ctx.fillStyle = cssVar('--muted') || '#666'; ctx.font = '11px sans-serif';
    const xs = def.grid[0], ys = def.grid[1];
    ctx.textAlign = 'center';
    ctx.fillText(fmtNum(xs[0]), M.l, M.t + ph + 14); ctx.fillText(fmtNum(xs[xs.length - 1]), M.l + pw, M.t + ph + 14);
    ctx.fillText(axisTitle(def, 0), M.l + pw / 2, H - 6);
    ctx.textAlign = 'right';
    ctx.fillText(fmtNum(ys[0]), M.l - 4, M.t + ph); ctx.fillText(fmtNum(ys[ys.length - 1]), M.l - 4, M.t + 10);
    ctx.save(); ctx.translate(12, M.t + ph / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = 'center';
    ctx.fillText(axisTitle(def, 1), 0, 0); ctx.restore();
    // Colour scale.
    const bx = M.l + pw + 12, bw = 12;
    for (let k = 0; k < ph; k++) {
      const c = colourOf(hi - ((hi - lo) * k) / (ph - 1), lo, hi);
      ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`; ctx.fillRect(bx, M.t + k, bw, 1);
    }
    ctx.fillStyle = cssVar('--muted') || '#666'; ctx.textAlign = 'left';
    ctx.fillText(fmtNum(hi), bx + bw + 3, M.t + 9); ctx.fillText(fmtNum(lo), bx + bw + 3, M.t + ph);
    return { x: M.l, y: M.t, w: pw, h: ph };
  }

  function fieldCard(run, m, view) {
    const def = m.grid_def || { grid: [], labels: [], units: [] };
    const canvas = h('canvas', { class: 'field-canvas', dataset: { metric: m.metric } });
    const slider = h('input', { type: 'range', min: 0, max: 0, value: 0, 'aria-label': `step of ${m.metric}` });
    const stepLabel = h('span', { class: 'muted field-step' }, '');
    const play = h('button', { type: 'button', class: 'field-play' }, 'Play');
    const err = h('div');
    let steps = [], shown = null, timer = null, follow = true, loading = false;
    const lo = () => (m.min_value ?? 0), hi = () => (m.max_value ?? 1);

    async function show(idx) {
      if (!steps.length || loading) return;
      idx = Math.max(0, Math.min(steps.length - 1, idx));
      const step = steps[idx].step;
      loading = true;
      try {
        const v = await api(`/api/runs/${enc(run.id)}/metrics/${enc(m.metric)}/values?step=${step}`);
        const flat = v.array.flat(3).map((x) => (x === null ? NaN : Number(x)));
        const shape = v.shape;
        const box = shape.length === 1 ? drawLine(canvas, def, flat, lo(), hi())
          : drawHeat(canvas, def, flat, shape.slice(-2), lo(), hi());
        shown = idx;
        slider.value = idx;
        stepLabel.textContent = `step ${step} of ${steps[steps.length - 1].step} · t = ${fmtNum(v.time)} s`;
        hooks.grids[m.metric] = {
          step, shape, values: flat, min: lo(), max: hi(), box, canvas,
          colourOf: (x) => colourOf(x, lo(), hi()),
        };
      } catch (e) { err.replaceChildren(); showError(err, e); } finally { loading = false; }
    }

    async function refresh() {
      steps = await api(`/api/runs/${enc(run.id)}/metrics/${enc(m.metric)}/steps`);
      slider.max = Math.max(0, steps.length - 1);
      if (shown === null || (follow && shown !== steps.length - 1)) await show(steps.length - 1);
    }

    slider.addEventListener('input', () => { follow = +slider.value === steps.length - 1; show(+slider.value); });
    play.addEventListener('click', () => {
      if (timer) { clearInterval(timer); timer = null; play.textContent = 'Play'; return; }
      play.textContent = 'Pause';
      let i = shown === steps.length - 1 ? 0 : (shown || 0);
      timer = setInterval(() => {
        if (!view.isConnected || i >= steps.length) { clearInterval(timer); timer = null; play.textContent = 'Play'; follow = true; return; }
        follow = i === steps.length - 1; show(i++);
      }, 250);
    });
    const card = h('div', { class: 'chart field', dataset: { metric: m.metric } },
      h('div', { class: 'title' }, `${m.metric} `, h('span', { class: 'muted' }, `on ${def.name || m.grid}`)),
      canvas, h('div', { class: 'row' }, play, slider, stepLabel), err);
    card.refresh = async (next) => { Object.assign(m, next); await refresh(); };
    refresh().catch((e) => showError(err, e));
    return card;
  }

  window.simtrack.runSection((run, view) => {
    const grid = h('div', { class: 'charts fields' });
    const section = h('section', { class: 'run-fields', hidden: true }, h('h2', {}, 'Fields'), grid);
    const cards = new Map();
    async function load() {
      const list = (await api(`/api/runs/${enc(run.id)}/metrics/`)).data || [];
      for (const m of list) {
        if (!m.grid_def || m.grid_def.grid.length > 2) continue;
        if (cards.has(m.metric)) await cards.get(m.metric).refresh(m);
        else { const c = fieldCard(run, m, view); cards.set(m.metric, c); grid.append(c); }
      }
      section.hidden = cards.size === 0;
    }
    load().catch((e) => showError(section, e));
    every(view, 2000, load);
    return section;
  });
})();
