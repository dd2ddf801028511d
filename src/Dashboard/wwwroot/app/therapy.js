import { api, badge, esc, fmtTime, header, live, showError } from './common.js';

// /therapy lists therapies; /therapy?id= shows one therapy's timeline across its pumps (GET /api/therapies/{id}).
const id = new URLSearchParams(location.search).get('id');
const pumpLink = s => s ? `<a href="/pump?serial=${encodeURIComponent(s)}">${esc(s)}</a>` : '';
const therapyLink = t => `<a href="/therapy?id=${encodeURIComponent(t)}">${esc(t)}</a>`;
const kindLabel = k => ({
  'therapy.opened': 'registered', 'therapy.trial': 'trial', 'therapy.response': 'response', 'therapy.decision': 'decision',
  'therapy.implant': 'implant', 'therapy.explant': 'explant', refill: 'refill', alarm: 'alarm', anomaly: 'anomaly',
}[k] ?? k);

async function loadList() {
  const body = document.querySelector('#therapies tbody');
  try {
    const phase = document.getElementById('phase').value;
    const items = await api('/api/therapies' + (phase ? '?phase=' + encodeURIComponent(phase) : ''));
    body.innerHTML = items.map(t => `<tr><td>${therapyLink(t.id)}</td><td>${esc(t.phase)}</td><td>${esc(t.indication ?? '—')}</td>` +
      `<td>${fmtTime(t.openedAt)}</td><td>${fmtTime(t.implantedAt)}</td><td>${fmtTime(t.endedAt)}</td>` +
      `<td>${t.serials.map(pumpLink).join(' → ') || '—'}</td></tr>`).join('') || '<tr><td colspan="7" class="muted">No therapies.</td></tr>';
  } catch (e) { showError(body, e); }
}

async function loadDetail() {
  const summary = document.getElementById('summary');
  const body = document.querySelector('#timeline tbody');
  try {
    const t = await api('/api/therapies/' + encodeURIComponent(id));
    const pumps = t.pumps.map(p => `${pumpLink(p.serial)} ${fmtTime(p.implantedAt)} – ${p.explantedAt ? fmtTime(p.explantedAt) + ' (' + esc(p.explantReason) + ')' : 'now'}`);
    summary.innerHTML = [
      ['Phase', esc(t.phase)], ['Indication', esc(t.indication ?? '—')], ['Opened', fmtTime(t.openedAt)],
      ['First implant', fmtTime(t.implantedAt)], ['Implanted now', t.currentSerial ? pumpLink(t.currentSerial) : 'none'],
      ['Ended', fmtTime(t.endedAt)], ['Pumps', pumps.join('<br>') || 'none'],
    ].map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('');
    body.innerHTML = t.timeline.map(e => `<tr class="${e.kind.startsWith('therapy.') ? 'therapy-event' : ''}" data-kind="${esc(e.kind)}">` +
      `<td>${fmtTime(e.at)}</td><td>${e.severity ? badge(e.severity) + ' ' : ''}${esc(kindLabel(e.kind))}</td><td>${pumpLink(e.serial)}</td>` +
      `<td class="wrap">${esc(e.summary)}${e.by ? ' <span class="muted">· ' + esc(e.by) + '</span>' : ''}</td></tr>`).join('');
  } catch (e) { showError(summary, e); }
}

await header('Therapies');
if (id) {
  document.getElementById('title').textContent = 'Therapy ' + id;
  document.title = id + ' · PumpFleet';
  document.getElementById('list-section').hidden = true;
  document.getElementById('detail-section').hidden = false;
  await loadDetail();
  document.body.dataset.loaded = 'true';
  live(loadDetail);
} else {
  document.getElementById('phase').addEventListener('change', loadList);
  await loadList();
  document.body.dataset.loaded = 'true';
  live(loadList);
}
