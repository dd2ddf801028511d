import { api, badge, esc, fmtNum, header, live } from './common.js';

let chart;
const label = c => [c.model, c.firmware, c.lot].filter(x => x !== null && x !== undefined).join(' · ');

async function load() {
  const by = document.getElementById('by').value;
  const metric = document.getElementById('metric').value;
  const r = await api(`/api/cohorts?by=${encodeURIComponent(by)}&metric=${metric}`);
  const rows = [...r.cohorts].sort((a, b) => (b.signal - a.signal) || ((b.rate ?? -1) - (a.rate ?? -1)));
  document.getElementById('fleet-rate').textContent =
    `Fleet: ${r.fleetCount} ${r.metric} over ${fmtNum(r.fleetPumpDays, 1)} pump-days = ${fmtNum(r.fleetRate, 3)} per 1000 pump-days; signals need ≥ ${r.minimumCount} events.`;
  document.querySelector('#cohorts tbody').innerHTML = rows.map(c => `<tr class="${c.signal ? 'flagged' : ''}">
    <td>${esc(label(c))}</td><td class="num">${c.pumps}</td><td class="num">${fmtNum(c.pumpDays, 1)}</td><td class="num">${c.alarms}</td>
    <td class="num">${c.criticalAlarms}</td><td class="num">${c.anomalies}</td><td class="num">${c.count}</td><td class="num">${fmtNum(c.rate, 3)}</td>
    <td class="num">${fmtNum(c.rateLower, 3)} – ${fmtNum(c.rateUpper, 3)}</td><td class="num">${fmtNum(c.restOfFleetRate, 3)}</td>
    <td>${c.signal ? badge('signal') : ''}</td></tr>`).join('') || '<tr><td colspan="11" class="muted">No cohorts yet.</td></tr>';
  const shown = rows.filter(c => c.rate !== null).slice(0, 40);
  chart?.destroy();
  chart = new Chart(document.getElementById('rates-chart'), {
    type: 'bar',
    data: {
      labels: shown.map(label),
      datasets: [
        { label: '95 % interval', data: shown.map(c => [c.rateLower, c.rateUpper]), backgroundColor: shown.map(c => c.signal ? 'rgba(179,38,30,.45)' : 'rgba(31,95,191,.35)') },
        { label: 'rate', type: 'scatter', data: shown.map((c, i) => ({ x: label(c), y: c.rate })), backgroundColor: '#14233a', pointRadius: 4 },
        { label: 'fleet rate', type: 'line', data: shown.map(() => r.fleetRate), borderColor: '#b86e00', borderDash: [5, 4], pointRadius: 0 },
      ],
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, title: { display: true, text: `${r.metric} per 1000 pump-days` } } } },
  });
  document.body.dataset.loaded = 'true';
}

document.getElementById('by').addEventListener('change', load);
document.getElementById('metric').addEventListener('change', load);
await header('Surveillance');
await load();
live(load);
