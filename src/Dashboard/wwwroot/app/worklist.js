import { api, badge, esc, fmtNum, fmtTime, header, showError } from './common.js';

const params = new URLSearchParams(location.search);
const daysInput = document.getElementById('days');
const hubInput = document.getElementById('hub');
const clinicSelect = document.getElementById('clinic');
if (params.get('days')) daysInput.value = params.get('days');
if (params.get('hubId')) hubInput.value = params.get('hubId');

// The clinics to choose from (a clinic's list is its hubs' pumps); kept selected across reloads through the URL.
async function loadClinics() {
  try {
    const clinics = await api('/api/clinics');
    clinicSelect.insertAdjacentHTML('beforeend',
      clinics.map(c => `<option value="${esc(c.id)}">${esc(c.name)} (${esc(c.id)})</option>`).join(''));
    if (params.get('clinicId')) clinicSelect.value = params.get('clinicId');
  } catch (e) { showError(document.getElementById('error'), e); }
}

function due(i) {
  const when = `${fmtTime(i.dueAt)}`;
  if (i.dueSource === 'corrected') {
    return `${when}<br><span class="corrected">corrected</span> <span class="muted">(${esc(i.flowCohort)} × ${fmtNum(i.flowFactor, 3)}, source ${esc(i.flowAnomalyId)}; ledger ${fmtTime(i.uncorrectedDueAt)})</span>`;
  }
  return i.dueSource === 'drug rule' ? `${when}<br><span class="muted">drug rule</span>` : when;
}

function prepare(i) {
  if (i.fillVolumeMl === null || i.fillVolumeMl === undefined) return '—';
  const amount = i.drugAmount === null || i.drugAmount === undefined ? '' : ` (${fmtNum(i.drugAmount, 1)} ${esc(i.amountUnit)})`;
  return `${fmtNum(i.fillVolumeMl, 1)} mL${amount}`;
}

async function load() {
  const q = new URLSearchParams({ days: daysInput.value || '14' });
  if (hubInput.value.trim()) q.set('hubId', hubInput.value.trim());
  if (clinicSelect.value) q.set('clinicId', clinicSelect.value);
  history.replaceState(null, '', '/worklist?' + q);
  const body = document.querySelector('#worklist tbody');
  try {
    const w = await api('/api/worklist?' + q);
    document.getElementById('error').textContent = '';
    document.getElementById('summary').textContent =
      `${w.items.length} pump(s) due by ${fmtTime(w.until)}${w.clinicId ? ' at ' + w.clinicName + ' (' + w.clinicId + ')' : ''}` +
      `${w.hubId ? ' on hub ' + w.hubId : ''}; ${w.items.filter(i => i.daysUntilDue < 0).length} overdue.`;
    body.innerHTML = w.items.map(i => `<tr data-serial="${esc(i.serial)}" class="${i.daysUntilDue < 0 ? 'overdue' : ''}">
      <td>${due(i)}</td><td class="num">${i.daysUntilDue < 0 ? 'overdue ' + fmtNum(-i.daysUntilDue, 1) : fmtNum(i.daysUntilDue, 1)} d</td>
      <td><a href="/pump?serial=${encodeURIComponent(i.serial)}">${esc(i.serial)}</a></td><td>${esc(i.hubId ?? '—')}</td>
      <td>${esc(i.drug ?? '—')}</td><td>${i.concentration ? `${fmtNum(i.concentration.value, 2)} ${esc(i.concentration.unit)}` : '—'}</td>
      <td>${prepare(i)}</td><td class="num">${i.reservoirMl === null ? '—' : fmtNum(i.reservoirMl, 1) + ' mL'}</td><td>${badge(i.status)}</td></tr>`).join('');
  } catch (e) { showError(document.getElementById('error'), e); }
  document.body.dataset.loaded = 'true';
}

document.getElementById('worklist-filters').addEventListener('submit', e => { e.preventDefault(); load(); });
await header('Worklist');
await loadClinics();
await load();
