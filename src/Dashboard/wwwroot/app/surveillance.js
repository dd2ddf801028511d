import { api, badge, esc, fmtNum, header, live } from './common.js';

let chart;
const DIMENSIONS = ['model', 'firmware', 'lot', 'indication', 'drug', 'phase', 'implantAge'];
const label = c => DIMENSIONS.filter(d => c.key && c.key[d] !== undefined).map(d => c.key[d]).join(' · ');
const pct = v => v === null || v === undefined ? '—' : `${(100 * v).toFixed(1)} %`;
const qv = v => v === null || v === undefined ? '—' : (v < 0.0001 ? '< 0.0001' : v.toFixed(4));
// Colour-blind-safe palette (Okabe–Ito), dark enough for 3:1 against white.
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#8a6d00', '#56B4E9', '#000000', '#E69F00'];

async function loadCohorts() {
  const by = document.getElementById('by').value;
  const metric = document.getElementById('metric').value;
  const r = await api(`/api/cohorts?by=${encodeURIComponent(by)}&metric=${metric}`);
  document.getElementById('method').textContent =
    `Signal method: ${r.method} false-discovery control at q = ${r.falseDiscoveryRate}, across ${r.tests} cohort × measure tests ` +
    `(event rates by exact Poisson test, pumps affected by exact binomial test, against the rest of the fleet; at least ${r.minimumCount} events or pumps to be tested).`;
  const rows = [...r.cohorts].sort((a, b) => (b.signal - a.signal) || ((b.rate ?? -1) - (a.rate ?? -1)));
  document.getElementById('fleet-rate').textContent =
    `Fleet: ${r.fleetCount} ${r.metric} over ${fmtNum(r.fleetPumpDays, 1)} pump-days = ${fmtNum(r.fleetRate, 3)} per 1000 pump-days; ` +
    `${r.fleetPumpsAffected} of ${r.fleetPumps} pumps affected.`;
  document.querySelector('#cohorts tbody').innerHTML = rows.map(c => `<tr class="${c.signal ? 'flagged' : ''}">
    <td>${esc(label(c))}</td><td class="num">${c.pumps}</td><td class="num">${fmtNum(c.pumpDays, 1)}</td><td class="num">${c.count}</td>
    <td class="num">${fmtNum(c.rate, 3)} (${fmtNum(c.rateLower, 3)}–${fmtNum(c.rateUpper, 3)})</td><td class="num">${fmtNum(c.restOfFleetRate, 3)}</td>
    <td class="num">${qv(c.rateQValue)}</td>
    <td class="num">${c.pumpsAffected} = ${pct(c.proportionAffected)} (${pct(c.proportionLower)}–${pct(c.proportionUpper)})</td>
    <td class="num">${pct(c.restOfFleetProportion)}</td><td class="num">${qv(c.proportionQValue)}</td>
    <td>${c.signal ? badge('signal') : ''}</td></tr>`).join('') || '<tr><td colspan="11" class="muted">No cohorts yet.</td></tr>';
  const shown = rows.filter(c => c.rate !== null).slice(0, 40);
  chart?.destroy();
  chart = new Chart(document.getElementById('rates-chart'), {
    type: 'bar',
    data: {
      labels: shown.map(label),
      datasets: [
        { label: '95 % interval', data: shown.map(c => [c.rateLower, c.rateUpper]), backgroundColor: shown.map(c => c.signal ? 'rgba(179,38,30,.45)' : 'rgba(31,95,191,.35)') },
        { label: 'rate', type: 'scatter', data: shown.map(c => ({ x: label(c), y: c.rate })), backgroundColor: '#14233a', pointRadius: 4 },
        { label: 'fleet rate', type: 'line', data: shown.map(() => r.fleetRate), borderColor: '#b86e00', borderDash: [5, 4], pointRadius: 0 },
      ],
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, title: { display: true, text: `${r.metric} per 1000 pump-days` } } } },
  });
}

// The Kaplan–Meier chart as inline SVG: a step line per cohort and its log-log band as a shaded step area.
function kmSvg(cohorts, endpoint) {
  const W = 900, H = 300, L = 56, R = 16, T = 12, B = 40;
  const maxDay = Math.max(1, ...cohorts.map(c => c.lastDay));
  const x = d => L + (W - L - R) * d / maxDay;
  const y = s => T + (H - T - B) * (1 - s);
  const parts = [];
  for (const s of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(s)}" y2="${y(s)}" stroke="#d9dee7"/>`,
      `<text x="${L - 6}" y="${y(s) + 4}" text-anchor="end" font-size="11" fill="#3d4a5c">${s.toFixed(2)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const d = maxDay * i / 5;
    parts.push(`<text x="${x(d)}" y="${H - B + 16}" text-anchor="middle" font-size="11" fill="#3d4a5c">${fmtNum(d, maxDay < 10 ? 1 : 0)}</text>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle" font-size="12" fill="#3d4a5c">days since implant</text>`,
    `<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" font-size="12" fill="#3d4a5c" transform="rotate(-90 14 ${(T + H - B) / 2})">survival (free of ${esc(endpoint)})</text>`);
  cohorts.forEach((c, i) => {
    const colour = COLOURS[i % COLOURS.length];
    // Step function: S = 1 (band 1–1) until the first end point, each step holds until the next, the last to the longest follow-up.
    const pts = [{ day: 0, s: 1, lo: 1, hi: 1 }, ...c.steps.map(s => ({ day: s.day, s: s.survival, lo: s.lower, hi: s.upper }))];
    let line = `M${x(0)},${y(1)}`, upper = [], lower = [];
    pts.forEach((p, k) => {
      const next = k + 1 < pts.length ? pts[k + 1].day : c.lastDay;
      if (k > 0) line += ` V${y(p.s)}`;
      line += ` H${x(Math.max(next, p.day))}`;
      upper.push(`${x(p.day)},${y(p.hi)} ${x(Math.max(next, p.day))},${y(p.hi)}`);
      lower.unshift(`${x(p.day)},${y(p.lo)} ${x(Math.max(next, p.day))},${y(p.lo)}`.split(' ').reverse().join(' '));
    });
    parts.push(`<polygon points="${upper.join(' ')} ${lower.join(' ')}" fill="${colour}" fill-opacity="0.15" stroke="none" data-band="${esc(c.label)}"/>`,
      `<path d="${line}" fill="none" stroke="${colour}" stroke-width="2" data-curve="${esc(c.label)}"/>`);
  });
  const legend = cohorts.map((c, i) =>
    `<li><span class="swatch" style="background:${COLOURS[i % COLOURS.length]}"></span>${esc(c.label)} (${c.pumps} pumps, ${c.events} end points)</li>`).join('');
  const summary = cohorts.map(c => `${c.label}: ${c.steps.length ? fmtNum(c.steps[c.steps.length - 1].survival, 3) : '1.000'} at day ${fmtNum(c.lastDay, 0)}`).join('; ');
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="Kaplan–Meier survival curves: ${esc(summary)}">` +
    `<title>Kaplan–Meier survival, ${esc(endpoint)}</title>${parts.join('')}</svg>` +
    `<figcaption><ul class="legend">${legend}</ul></figcaption>`;
}

async function loadSurvival() {
  const by = document.getElementById('km-by').value;
  const endpoint = document.getElementById('km-endpoint').value;
  const r = await api(`/api/cohorts/survival?by=${encodeURIComponent(by)}&endpoint=${encodeURIComponent(endpoint)}`);
  const cohorts = [...r.cohorts].sort((a, b) => b.pumps - a.pumps).slice(0, COLOURS.length);
  document.getElementById('km-method').textContent =
    `${r.method} (${Math.round(100 * r.confidence)} %), from implant to ${r.endpoint}; censored at the last report` +
    `${r.endpoint === 'explant' ? '' : ' or at explant'}. Not followed: ${r.withoutImplantDate} pumps without an implant date, ` +
    `${r.endPointBeforeImplant} whose first end point came before implant.` + (r.cohorts.length > cohorts.length ? ` The ${cohorts.length} largest of ${r.cohorts.length} cohorts are drawn.` : '');
  document.getElementById('km-chart').innerHTML = cohorts.length ? kmSvg(cohorts, r.endpoint) : '<p class="muted">No implanted pumps yet.</p>';
  document.querySelector('#km-table tbody').innerHTML = r.cohorts.map(c => {
    const last = c.steps[c.steps.length - 1];
    return `<tr><td>${esc(c.label)}</td><td class="num">${c.pumps}</td><td class="num">${c.events}</td><td class="num">${c.censored}</td>
      <td class="num">${fmtNum(c.lastDay, 0)}</td><td class="num">${last ? `${fmtNum(last.survival, 3)} (${fmtNum(last.lower, 3)}–${fmtNum(last.upper, 3)})` : '1.000'}</td></tr>`;
  }).join('') || '<tr><td colspan="6" class="muted">No implanted pumps yet.</td></tr>';
}

async function load() {
  await Promise.all([loadCohorts(), loadSurvival()]);
  document.body.dataset.loaded = 'true';
}

document.getElementById('by').addEventListener('change', load);
document.getElementById('metric').addEventListener('change', load);
document.getElementById('km-by').addEventListener('change', load);
document.getElementById('km-endpoint').addEventListener('change', load);
await header('Surveillance');
await load();
live(load);
