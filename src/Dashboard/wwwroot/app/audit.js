// The audit trail page (admins): newest first, filtered by actor, action or target, paged by id.
import { api, esc, fmtTime, header } from './common.js';

const body = document.querySelector('#audit tbody');
const more = document.getElementById('more');
const form = document.getElementById('filter');
let oldest = null;

async function load(append) {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
  q.set('limit', '200');
  if (append && oldest !== null) q.set('beforeId', oldest);
  const rows = await api('/api/audit?' + q);
  const html = rows.map(r => `<tr><td>${r.id}</td><td>${fmtTime(r.at)}</td><td class="break">${esc(r.actorKind)}: ${esc(r.actor)}</td><td>${esc(r.role)}</td>` +
    `<td>${esc(r.action)}</td><td class="break">${esc(r.target)}</td><td>${r.outcome}</td><td class="break">${esc(r.remote)}</td><td class="break"><code>${esc(r.detail)}</code></td></tr>`).join('');
  body.innerHTML = append ? body.innerHTML + html : html;
  if (rows.length) oldest = rows[rows.length - 1].id;
  more.hidden = rows.length < 200;
}

form.addEventListener('submit', e => { e.preventDefault(); oldest = null; load(false); });
more.addEventListener('click', () => load(true));
await header('Audit');
await load(false);
document.body.dataset.loaded = 'true';
