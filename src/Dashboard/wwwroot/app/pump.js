import { api, badge, esc, fmtNum, fmtTime, header, live, showError } from './common.js';

const serial = new URLSearchParams(location.search).get('serial') ?? '';
document.getElementById('title').textContent = 'Pump ' + serial;
document.title = serial + ' · PumpFleet';
const base = '/api/pumps/' + encodeURIComponent(serial);
const charts = {};
let asOf = null;
let lastSeq = 0;

const palette = { programmed: '#1f5fbf', delivered: '#2e7d32', measured: '#b86e00', reservoir: '#5b3fb3', refill: '#b3261e', forecast: '#b3261e' };

function chart(id, config) {
  charts[id]?.destroy();
  config.options = { animation: false, responsive: true, maintainAspectRatio: false, ...config.options };
  charts[id] = new Chart(document.getElementById(id), config);
}

const timeAxis = { type: 'time', time: { tooltipFormat: 'yyyy-MM-dd HH:mm' } };

async function loadState() {
  const el = document.getElementById('state');
  try {
    const s = await api(base + (asOf ? '?asOf=' + encodeURIComponent(asOf) : ''));
    document.getElementById('asof-label').textContent = asOf ? '(as of ' + fmtTime(asOf) + ')' : '(now)';
    const rx = s.prescription;
    const rows = [
      ['Status', badge(s.status)], ['Hub', esc(s.hubId ?? '—')], ['Clinic', s.clinicId ? `<span id="clinic">${esc(s.clinicName)} (${esc(s.clinicId)})</span>` : '—'], ['Device', s.model ? `${esc(s.model)} · fw ${esc(s.firmware)} · lot ${esc(s.lot)}` : '—'],
      ['Phase', esc(s.phase)],
      ['Therapy', s.therapyId ? `<a href="/therapy?id=${encodeURIComponent(s.therapyId)}" id="therapy-link">${esc(s.therapyId)}</a> · ${esc(s.therapyPhase)} · implanted ${fmtTime(s.implantedAt)}` +
        (s.explantedAt ? ` · explanted ${fmtTime(s.explantedAt)}` : '') : 'none'],
      ['Drug', esc(s.drug)],
      ['Prescription', rx ? `${esc(rx.mode)} ${rx.rateMlPerDay ?? ''} mL/day · ${rx.concentration?.value ?? ''} ${esc(rx.concentration?.unit)}` : '—'],
      ['Reservoir (ledger)', fmtNum(s.reservoirMl, 2) + ' mL'], ['Forecast empty', fmtTime(s.forecastEmptyAt)], ['Next refill due', dueWithSource(s)],
      ...flowCorrectionRows(s.flowCorrection, s.nextRefillDueSource),
      ['Battery', s.batteryPct === null || s.batteryPct === undefined ? '—' : s.batteryPct + ' %'],
      ['Active alarms', s.activeAlarms.map(a => `${badge(a.severity === 'critical' ? 'critical' : 'attention')} ${esc(a.code)}`).join(' ') || 'none'],
      ['Open anomalies', s.openAnomalies.map(a => `${badge(a.severity)} ${esc(a.kind)}`).join(' ') || 'none'],
      ['Last seq', s.lastSeq], ['Gaps', s.gaps.map(g => g.from + '–' + g.to).join(', ') || 'none'],
      ['Last event', fmtTime(s.lastEventAt)], ['Last seen', fmtTime(s.lastSeenAt)],
    ];
    el.innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('');
    return s;
  } catch (e) { showError(el, e); return null; }
}

// The refill-due date the platform uses (stored in the read model too) and where it comes from.
function dueWithSource(s) {
  if (!s.nextRefillDueAt) return '—';
  const source = { 'cohort-flow': '<span class="corrected">corrected</span> by the cohort flow factor below',
    'drug-rule': 'drug rule', ledger: 'ledger, programmed rate' }[s.nextRefillDueSource] ?? 'ledger';
  const uncorrected = s.nextRefillDueSource === 'cohort-flow' ? `; uncorrected ${fmtTime(s.uncorrectedNextRefillDueAt)}` : '';
  return `${fmtTime(s.nextRefillDueAt)} <span class="muted">(${source}${uncorrected})</span>`;
}

// An open cohort-flow-deviation of the pump's lot, model or firmware, held by the pump: the forecasts redone at the
// cohort's factor, shown as corrected, with the anomaly that is their source (docs/detection.md). The depletion-risk
// alert and the refill-due date take it when it brings them forward; a later date (under-infusion) is shown only.
function flowCorrectionRows(c, dueSource) {
  if (!c) return [];
  const pct = Math.round((c.factor - 1) * 1000) / 10;
  const source = `<span class="corrected">corrected</span> by ${esc(c.cohort)}'s flow factor ${fmtNum(c.factor, 3)} (${pct > 0 ? '+' : ''}${pct} %), `
    + `source <a href="/alerts">${esc(c.anomalyId)}</a> since ${fmtTime(c.since)}`;
  return [
    ['Flow correction', source],
    ['Low reservoir (corrected)', fmtTime(c.lowReservoirAt)], ['Forecast empty (corrected)', fmtTime(c.forecastEmptyAt)],
    ['Next refill due (corrected)', dueSource === 'cohort-flow' ? `<strong>${fmtTime(c.nextRefillDueAt)}</strong> (used)`
      : `${fmtTime(c.nextRefillDueAt)} <span class="muted">(not used: not earlier than the uncorrected date)</span>`],
  ];
}

async function loadCharts(state) {
  const flow = await api(base + '/flow?bucket=day' + (state?.lastEventAt ? '&to=' + state.lastEventAt.slice(0, 10) : ''));
  const day = p => p.start + 'T12:00:00Z';
  chart('flow-chart', {
    type: 'line',
    data: { datasets: [
      { label: 'programmed', data: flow.points.map(p => ({ x: day(p), y: p.programmedMlPerDay })), borderColor: palette.programmed, stepped: true },
      { label: 'delivered', data: flow.points.map(p => ({ x: day(p), y: p.deliveredMlPerDay })), borderColor: palette.delivered },
      { label: 'measured', data: flow.points.filter(p => p.measuredMlPerDay !== null).map(p => ({ x: day(p), y: p.measuredMlPerDay })), borderColor: palette.measured, borderDash: [4, 3] },
    ] },
    options: { scales: { x: timeAxis, y: { beginAtZero: true, title: { display: true, text: 'mL/day' } } } },
  });
  const levels = flow.points.filter(p => p.reservoirMl !== null).map(p => ({ x: day(p), y: p.reservoirMl }));
  const refills = flow.points.filter(p => p.refills > 0).map(p => ({ x: day(p), y: p.reservoirMl }));
  const forecast = state?.forecastEmptyAt && state.reservoirMl !== null && state.lastEventAt
    ? [{ x: state.lastEventAt, y: state.reservoirMl }, { x: state.forecastEmptyAt, y: 0 }] : [];
  chart('reservoir-chart', {
    type: 'line',
    data: { datasets: [
      { label: 'reservoir (ledger)', data: levels, borderColor: palette.reservoir },
      { label: 'refill', type: 'scatter', data: refills, backgroundColor: palette.refill, pointRadius: 6, pointStyle: 'triangle' },
      { label: 'depletion forecast', data: forecast, borderColor: palette.forecast, borderDash: [6, 4] },
    ] },
    options: { scales: { x: timeAxis, y: { beginAtZero: true, title: { display: true, text: 'mL' } } } },
  });
}

async function loadTimeline(lastEventAt) {
  const [alarms, anomalies] = await Promise.all([api(base + '/alarms'), api('/api/anomalies?status=all&serial=' + encodeURIComponent(serial))]);
  // Floating bars need numbers on a time axis (ISO strings inside [start, end] pairs are not parsed).
  // Still-open intervals end at the pump's last event (event time), not at the wall clock.
  const end = Date.parse(lastEventAt ?? new Date().toISOString());
  const bars = [
    ...alarms.map(a => ({ y: 'alarm ' + a.code, x: [Date.parse(a.raisedAt), a.clearedAt ? Date.parse(a.clearedAt) : end], c: a.severity === 'critical' ? '#b3261e' : '#b86e00' })),
    ...anomalies.map(a => ({ y: 'anomaly ' + a.kind, x: [Date.parse(a.detectedAt), a.resolvedAt ? Date.parse(a.resolvedAt) : end], c: a.severity === 'critical' ? '#7f1d1d' : '#1f5fbf' })),
  ];
  chart('timeline-chart', {
    type: 'bar',
    data: { labels: [...new Set(bars.map(b => b.y))], datasets: [{ label: 'open interval', data: bars.map(b => ({ x: b.x, y: b.y })), backgroundColor: bars.map(b => b.c), minBarLength: 4 }] },
    // Bar charts start their value axis at zero by default (1970 on a time axis): pin it to the intervals.
    options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { ...timeAxis, beginAtZero: false,
      min: bars.length ? Math.min(...bars.map(b => b.x[0])) - 3600e3 : undefined, max: bars.length ? Math.max(...bars.map(b => b.x[1])) + 3600e3 : undefined } } },
  });
  document.querySelector('#anomalies tbody').innerHTML = anomalies.map(a =>
    `<tr><td>${fmtTime(a.detectedAt)}</td><td>${esc(a.kind)}</td><td>${badge(a.severity)}</td><td>${esc(a.status)}</td><td>${esc(a.summary)}</td></tr>`).join('')
    || '<tr><td colspan="5" class="muted">None.</td></tr>';
}

async function loadEvents(reset) {
  if (reset) { lastSeq = 0; document.querySelector('#events tbody').innerHTML = ''; }
  const events = await api(base + `/events?afterSeq=${lastSeq}&limit=200`);
  const rows = events.map(e => {
    const { seq, type, at, receivedAt, clockSuspect, ...rest } = e;
    return `<tr><td>${seq}</td><td>${esc(type)}</td><td>${fmtTime(at)}</td><td>${fmtTime(receivedAt)}</td><td>${clockSuspect ? badge('attention') : ''}</td><td class="muted">${esc(JSON.stringify(rest))}</td></tr>`;
  });
  document.querySelector('#events tbody').insertAdjacentHTML('beforeend', rows.join(''));
  if (events.length) lastSeq = events.at(-1).seq;
  document.getElementById('more-events').disabled = events.length < 200;
}

async function refresh() {
  const state = await loadState();
  await Promise.all([loadCharts(state), loadTimeline(state?.lastEventAt)]);
  document.body.dataset.loaded = 'true';
}

document.getElementById('asof-go').addEventListener('click', async () => {
  const v = document.getElementById('asof').value;
  asOf = v ? new Date(v + 'Z').toISOString() : null;
  await loadState();
});
document.getElementById('asof-now').addEventListener('click', async () => { asOf = null; document.getElementById('asof').value = ''; await loadState(); });
document.getElementById('more-events').addEventListener('click', () => loadEvents(false));

await header('Fleet');
await Promise.all([refresh(), loadEvents(true)]);
live(() => { if (!asOf) refresh(); loadEvents(false); });
