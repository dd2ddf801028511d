import { api, badge, esc, fmtTime, header, live } from './common.js';

let canTriage = false;
const filters = { severity: '', kind: '' };
// Acted-on ids stay hidden until the read model has caught up, so a row does not flicker back in between.
const handled = new Set();

function pumpLink(serial) { return `<a href="/pump?serial=${encodeURIComponent(serial)}">${esc(serial)}</a>`; }

async function load() {
  const q = new URLSearchParams();
  if (filters.severity) q.set('severity', filters.severity);
  if (filters.kind) q.set('kind', filters.kind);
  const [open, acknowledged, alarms] = await Promise.all([
    api('/api/anomalies?status=open&' + q), api('/api/anomalies?status=acknowledged&' + q), api('/api/alarms?active=true&severity=critical')]);
  // A live refresh rebuilds the tables: keep what the user is typing in a note (and where), or the acknowledgement
  // would go out without it.
  const typed = new Map([...document.querySelectorAll('tbody tr[data-id] input.note')]
    .filter(i => i.value).map(i => [i.closest('table').id + '/' + i.closest('tr').dataset.id, i.value]));
  const focused = document.activeElement?.classList.contains('note')
    ? document.activeElement.closest('table').id + '/' + document.activeElement.closest('tr').dataset.id : null;
  const visible = open.filter(a => !handled.has(a.id));
  document.getElementById('open-count').textContent = `(${visible.length})`;
  document.querySelector('#anomalies tbody').innerHTML = visible.map(a => `<tr data-id="${esc(a.id)}">
      <td>${fmtTime(a.detectedAt)}</td><td>${pumpLink(a.serial)}</td><td>${esc(a.kind)}</td><td>${badge(a.severity)}</td><td class="wrap">${esc(a.summary)}</td>
      <td><input class="note" placeholder="note" size="18" ${canTriage ? '' : 'disabled'}></td>
      <td><button class="ack" ${canTriage ? '' : 'disabled'}>Acknowledge</button> <button class="resolve secondary" ${canTriage ? '' : 'disabled'}>Resolve</button></td></tr>`).join('')
    || '<tr><td colspan="7" class="muted">Nothing open.</td></tr>';
  document.querySelector('#acknowledged tbody').innerHTML = acknowledged.filter(a => !handled.has(a.id + ':resolved')).map(a => `<tr data-id="${esc(a.id)}">
      <td>${fmtTime(a.detectedAt)}</td><td>${pumpLink(a.serial)}</td><td>${esc(a.kind)}</td><td>${badge(a.severity)}</td><td>${esc(a.acknowledgedBy)}</td>
      <td><input class="note" placeholder="note" size="18" ${canTriage ? '' : 'disabled'}></td>
      <td><button class="resolve secondary" ${canTriage ? '' : 'disabled'}>Resolve</button></td></tr>`).join('')
    || '<tr><td colspan="7" class="muted">None.</td></tr>';
  document.querySelector('#critical-alarms tbody').innerHTML = alarms.map(a =>
      `<tr><td>${fmtTime(a.raisedAt)}</td><td>${pumpLink(a.serial)}</td><td>${badge('critical')} ${esc(a.code)}</td></tr>`).join('')
    || '<tr><td colspan="3" class="muted">None.</td></tr>';
  for (const input of document.querySelectorAll('tbody tr[data-id] input.note')) {
    const key = input.closest('table').id + '/' + input.closest('tr').dataset.id;
    if (typed.has(key)) input.value = typed.get(key);
    if (key === focused) input.focus();
  }
  // Forget handled ids once the read model agrees.
  for (const id of [...handled]) if (!open.some(a => a.id === id) && !acknowledged.some(a => a.id + ':resolved' === id)) handled.delete(id);
  document.body.dataset.loaded = 'true';
}

document.querySelector('main').addEventListener('click', async e => {
  const button = e.target.closest('button.ack, button.resolve');
  if (!button) return;
  const row = button.closest('tr');
  const id = row.dataset.id;
  const note = row.querySelector('input.note')?.value || null;
  const action = button.classList.contains('ack') ? 'acknowledge' : 'resolve';
  button.disabled = true;
  try {
    await api(`/api/anomalies/${encodeURIComponent(id)}/${action}`, { method: 'POST', body: JSON.stringify({ note }) });
    handled.add(action === 'resolve' ? id + ':resolved' : id);
    if (action === 'resolve') handled.add(id);
    row.remove();
    document.getElementById('action-error').textContent = '';
    await load();
  } catch (err) {
    document.getElementById('action-error').textContent = `${action} ${id}: ${err.message}`;
    button.disabled = false;
  }
});
document.getElementById('filter-severity').addEventListener('change', e => { filters.severity = e.target.value; load(); });
document.getElementById('filter-kind').addEventListener('change', e => { filters.kind = e.target.value.trim(); load(); });

const me = await header('Alerts');
canTriage = !!me?.roles.includes('analyst');
await load();
live(load);
