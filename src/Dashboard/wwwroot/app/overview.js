// The fleet page's overview charts: inline SVG drawn from one server-side aggregate (/api/fleet/overview, cached a
// minute on the server), no chart library and nothing from a CDN.
import { api, esc } from './common.js';

const W = 520, H = 170, L = 40, R = 8, T = 8, B = 24;
// Distinguishable on white at 3:1 or more (WCAG 1.4.11 graphics), and told apart by the legend text too.
const colours = ['#1f5fbf', '#b3261e', '#2e7d32', '#8a4b00', '#5b3fb3', '#00707a', '#8a1c7c', '#4d4d4d', '#7a6a00', '#1b4d2e', '#9c2f00', '#003f8a'];

function axes(max, labels) {
  const y = v => T + (H - T - B) * (1 - v / (max || 1));
  const ticks = [0, max / 2, max].map(v => `<text x="${L - 4}" y="${y(v) + 4}" text-anchor="end">${Math.round(v)}</text>
    <line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`).join('');
  const first = labels[0] ?? '', last = labels.at(-1) ?? '';
  return { y, svg: ticks + `<text x="${L}" y="${H - 6}">${esc(first)}</text><text x="${W - R}" y="${H - 6}" text-anchor="end">${esc(last)}</text>` };
}

// An even integer top, so the middle tick is a whole number too.
const evenTop = values => { const top = Math.max(2, ...values); return top + (top % 2); };

// Series with right: true are drawn against their own scale, labelled on the right (events per day are thousands,
// pumps reporting tens: on one scale the pumps would be a flat line at the bottom).
function lineChart(el, series, labels, title) {
  const left = series.filter(s => !s.right), right = series.filter(s => s.right);
  const max = evenTop(left.flatMap(s => s.values));
  const { y, svg } = axes(max, labels);
  let ticks = '', scaleOf = () => y;
  if (right.length > 0) {
    const rmax = evenTop(right.flatMap(s => s.values));
    const yr = v => T + (H - T - B) * (1 - v / rmax);
    ticks = [0, rmax / 2, rmax].map(v => `<text x="${W - R}" y="${yr(v) - 2}" text-anchor="end" class="right">${Math.round(v)}</text>`).join('');
    scaleOf = s => s.right ? yr : y;
  }
  const x = i => L + (W - L - R) * (labels.length > 1 ? i / (labels.length - 1) : 0.5);
  const lines = series.map((s, k) => `<polyline fill="none" stroke="${colours[k % colours.length]}" stroke-width="2"${s.right ? ' stroke-dasharray="5 3"' : ''}
    points="${s.values.map((v, i) => `${x(i).toFixed(1)},${scaleOf(s)(v).toFixed(1)}`).join(' ')}"><title>${esc(s.label)}</title></polyline>`).join('') + ticks;
  const latest = series.map(s => `${s.label} ${s.values.at(-1) ?? 0}`).join(', ');
  el.innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}; latest: ${esc(latest || 'none')}">${svg}${lines}</svg>
    <ul class="legend">${series.map((s, k) => `<li><span class="swatch" style="background:${colours[k % colours.length]}"></span>${esc(s.label)} (${s.values.at(-1) ?? 0})</li>`).join('') || '<li class="muted">none</li>'}</ul>`;
}

function barChart(el, buckets, title) {
  const top = Math.max(2, ...buckets.map(b => b.pumps));
  const max = top + (top % 2);
  const { y, svg } = axes(max, []);
  const w = (W - L - R) / Math.max(1, buckets.length);
  const bars = buckets.map((b, i) => `<rect x="${(L + i * w + 4).toFixed(1)}" y="${y(b.pumps).toFixed(1)}" width="${(w - 8).toFixed(1)}"
      height="${(y(0) - y(b.pumps)).toFixed(1)}" fill="${b.label === 'overdue' ? '#b3261e' : '#1f5fbf'}"><title>${esc(b.label)}: ${b.pumps}</title></rect>
    <text x="${(L + i * w + w / 2).toFixed(1)}" y="${H - 6}" text-anchor="middle">${esc(b.label)}</text>`).join('');
  el.innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}: ${esc(buckets.map(b => `${b.label} ${b.pumps}`).join(', '))}">${svg}${bars}</svg>`;
}

export async function loadOverview() {
  const o = await api('/api/fleet/overview?days=30');
  const days = o.days.map(d => d.slice(5));
  lineChart(document.getElementById('chart-anomalies'), o.openAnomaliesByKind.map(k => ({ label: k.kind, values: k.open })), days, 'Open anomalies by kind, end of each day');
  // Device events per day of receipt (the ingest read model) on the left scale, pumps reporting on the right, dashed.
  const ingest = o.deviceEventsByDay
    ? [{ label: 'device events stored (left scale)', values: o.deviceEventsByDay }, { label: 'pumps reporting (right scale, dashed)', values: o.pumpsReportingByDay, right: true }]
    : [{ label: 'pumps reporting', values: o.pumpsReportingByDay }];
  lineChart(document.getElementById('chart-reporting'), ingest, days, 'Ingest per day: device events stored and pumps reporting');
  barChart(document.getElementById('chart-refill'), o.refillDue, 'Pumps by refill due (ledger)');
  const silent = o.openAnomaliesByKind.find(k => k.kind === 'silent');
  lineChart(document.getElementById('chart-silent'), [{ label: 'silent anomalies open', values: silent?.open ?? o.days.map(() => 0) }], days, 'Silent pumps per day');
  document.getElementById('silent-now').textContent = `${o.silentPumps} pump(s) not heard from for over ${o.silentWindowHours} h now.`;
  document.body.dataset.overview = 'true';
}
