import { api, badge, esc, fmtTime, header, live } from './common.js';

let canTriage = false;
const filters = { severity: '', kind: '' };
// Acted-on ids stay hidden until the read model has caught up, so a row does not flicker back in between.
const handled = new Set();
// Anomaly changes pushed by the server as they commit (id -> what the events said), shown at once until the read
// model agrees; the ids that arrived that way while the page was open stay marked 'live' (new since you looked);
// the last lists read from the API.
const pushed = new Map();
const arrivedLive = new Set();
let lists = { open: [], acknowledged: [], alarms: [] };

function pumpLink(serial) { return `<a href="/pump?serial=${encodeURIComponent(serial)}">${esc(serial)}</a>`; }

// Ids of pushed changes the page could not apply (an acknowledgement of an anomaly it never saw, so without its
// kind, pump, severity): id -> re-reads left. Each later 'fleet' message (the read model moved) re-reads the lists
// until the read model shows the anomaly, at most three times (a filter may hide it for good).
const unapplied = new Map();
// Critical alarms are not pushed with their details: their list is re-read when the summary's count of them moved or
// a pushed alarm event arrived since the last read.
let alarmsRead = { count: null, dirty: false };

async function load() {
  const q = new URLSearchParams();
  if (filters.severity) q.set('severity', filters.severity);
  if (filters.kind) q.set('kind', filters.kind);
  alarmsRead.dirty = false;
  const [open, acknowledged, alarms] = await Promise.all([
    api('/api/anomalies?status=open&' + q), api('/api/anomalies?status=acknowledged&' + q), api('/api/alarms?active=true&severity=critical')]);
  lists = { open, acknowledged, alarms };
  for (const id of [...unapplied.keys()]) if (open.some(x => x.id === id) || acknowledged.some(x => x.id === id)) unapplied.delete(id);
  // Forget pushed changes the read model now shows.
  for (const [id, a] of [...pushed]) {
    const inOpen = open.some(x => x.id === id), inAck = acknowledged.some(x => x.id === id);
    if ((a.status === 'open' && inOpen) || (a.status === 'acknowledged' && inAck) || (a.status === 'resolved' && !inOpen && !inAck)) pushed.delete(id);
  }
  render();
}

async function loadAlarms() {
  alarmsRead.dirty = false;
  lists = { ...lists, alarms: await api('/api/alarms?active=true&severity=critical') };
  render();
}

// An anomaly change pushed by the server: merged into what the page shows (no request) until a re-read shows it.
function onAnomaly(a) {
  const known = pushed.get(a.id) ?? lists.open.find(x => x.id === a.id) ?? lists.acknowledged.find(x => x.id === a.id);
  // An acknowledgement carries no kind, pump or severity: one of an anomaly the page never saw cannot be shown from the
  // message alone. (A resolution of one it never saw changes nothing it shows.)
  if (!known && a.status === 'acknowledged') unapplied.set(a.id, 3);
  const merged = { ...(known ?? {}) };
  for (const [k, v] of Object.entries(a)) if (v !== null && v !== undefined) merged[k] = v;
  pushed.set(a.id, merged);
  arrivedLive.add(a.id);
  render();
}

// The API's lists (their order: critical first, newest first) with the pushed changes applied: a pushed new anomaly
// goes on top of its table, a pushed acknowledgement moves a row to the acknowledged table, a resolution removes it.
function merge() {
  const matches = a => (!filters.severity || a.severity === filters.severity) && (!filters.kind || a.kind === filters.kind);
  const withPush = a => pushed.has(a.id) ? { ...a, ...pushed.get(a.id) } : a;
  const fromApi = [...lists.open, ...lists.acknowledged].map(withPush);
  const known = new Set(fromApi.map(a => a.id));
  const fresh = [...pushed.values()].filter(a => !known.has(a.id) && a.kind).reverse();
  const rows = status => [...fresh.filter(a => a.status === status), ...fromApi.filter(a => a.status === status && pushed.has(a.id) && !lists[status].some(x => x.id === a.id)),
    ...fromApi.filter(a => a.status === status && lists[status].some(x => x.id === a.id))].filter(matches);
  return { open: rows('open'), acknowledged: rows('acknowledged') };
}

function render() {
  const { open, acknowledged } = merge();
  const alarms = lists.alarms;
  const liveClass = id => arrivedLive.has(id) ? ' class="live"' : '';
  // A live refresh rebuilds the tables: keep what the user is typing in a note (and where), or the acknowledgement
  // would go out without it.
  const typed = new Map([...document.querySelectorAll('tbody tr[data-id] input.note')]
    .filter(i => i.value).map(i => [i.closest('table').id + '/' + i.closest('tr').dataset.id, i.value]));
  const focused = document.activeElement?.classList.contains('note')
    ? document.activeElement.closest('table').id + '/' + document.activeElement.closest('tr').dataset.id : null;
  const visible = open.filter(a => !handled.has(a.id));
  document.getElementById('open-count').textContent = `(${visible.length})`;
  document.querySelector('#anomalies tbody').innerHTML = visible.map(a => `<tr data-id="${esc(a.id)}"${liveClass(a.id)}>
      <td>${fmtTime(a.detectedAt)}</td><td>${pumpLink(a.serial)}</td><td>${esc(a.kind)}</td><td>${badge(a.severity)}</td><td class="wrap">${esc(a.summary)}</td>
      <td><input class="note" placeholder="note" size="18" ${canTriage ? '' : 'disabled'}></td>
      <td><button class="ack" ${canTriage ? '' : 'disabled'}>Acknowledge</button> <button class="resolve secondary" ${canTriage ? '' : 'disabled'}>Resolve</button></td></tr>`).join('')
    || '<tr><td colspan="7" class="muted">Nothing open.</td></tr>';
  document.querySelector('#acknowledged tbody').innerHTML = acknowledged.filter(a => !handled.has(a.id + ':resolved')).map(a => `<tr data-id="${esc(a.id)}"${liveClass(a.id)}>
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
  for (const id of [...handled]) if (!lists.open.some(a => a.id === id) && !lists.acknowledged.some(a => a.id + ':resolved' === id)) handled.delete(id);
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
// A later summary (the read model moved): nothing to re-read but what the pushes could not carry.
function onSummary(s) {
  const alarmsMoved = alarmsRead.dirty || (alarmsRead.count !== null && s.criticalAlarms !== alarmsRead.count);
  alarmsRead.count = s.criticalAlarms;
  if (unapplied.size > 0) {
    for (const [id, left] of [...unapplied]) if (left <= 1) unapplied.delete(id); else unapplied.set(id, left - 1);
    load();
  } else if (alarmsMoved) {
    loadAlarms();
  }
}

function onPump(p) {
  if (p.type === 'alarm.raised' || p.type === 'alarm.cleared') alarmsRead.dirty = true;
}

await load();
// The lists are read at each (re)connection of the live stream (messages sent while away are lost); between, the
// pushed anomaly changes are applied in place.
live(onSummary, { anomaly: onAnomaly, pump: onPump }, s => { alarmsRead.count = s.criticalAlarms; return load(); });
