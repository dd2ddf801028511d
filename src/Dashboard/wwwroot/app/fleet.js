import { api, badge, esc, fmtNum, fmtTime, header, live, relative, showError } from './common.js';
import { loadOverview } from './overview.js';

// Server-side paging, filtering and sorting over the indexed pf_pump_status read model: the browser only ever holds one page.
const state = { page: 1, pageSize: 50, sort: 'attention', dir: 'asc', status: '', model: '', firmware: '', lot: '', q: '' };
const tbody = document.querySelector('#pumps tbody');

function query() {
  const p = new URLSearchParams({ page: state.page, pageSize: state.pageSize, sort: state.sort, dir: state.dir });
  for (const k of ['status', 'model', 'firmware', 'lot', 'q']) if (state[k]) p.set(k, state[k]);
  return p;
}

async function loadPumps() {
  try {
    const result = await api('/api/pumps?' + query());
    tbody.innerHTML = result.items.map(p => `<tr data-serial="${esc(p.serial)}">
      <td><a href="/pump?serial=${encodeURIComponent(p.serial)}">${esc(p.serial)}</a></td><td>${badge(p.status)}</td>
      <td>${esc(p.model)}</td><td>${esc(p.firmware)}</td><td>${esc(p.lot)}</td><td>${esc(p.drug)}</td>
      <td class="num">${fmtNum(p.reservoirMl, 1)}</td><td>${fmtTime(p.forecastEmptyAt)}</td><td>${fmtTime(p.nextRefillDueAt)}</td>
      <td class="num" title="${esc(p.activeAlarmCodes.join(', '))}">${p.activeAlarms}</td><td class="num">${p.openAnomalies}</td>
      <td title="${fmtTime(p.lastSeenAt)}">${relative(p.lastSeenAt)}</td></tr>`).join('') ||
      `<tr><td colspan="12" class="muted">No pumps match.</td></tr>`;
    const pages = Math.max(1, Math.ceil(result.total / result.pageSize));
    document.getElementById('page-info').textContent = `page ${result.page} of ${pages} · ${result.total} pumps`;
    document.getElementById('prev').disabled = result.page <= 1;
    document.getElementById('next').disabled = result.page >= pages;
    document.body.dataset.loaded = 'true';
  } catch (e) { showError(tbody, e); }
}

// The status cards: from the API at first, then from each pushed summary (the 'fleet' message is the summary).
async function loadSummary() { renderSummary(await api('/api/fleet/summary')); }

function renderSummary(s) {
  const order = ['critical', 'attention', 'stopped', 'ok', 'unknown', 'inactive'];
  const cards = order.filter(k => s.byStatus[k]).map(k => `<div class="card" data-status="${k}"><div class="n">${s.byStatus[k]}</div><div class="l">${badge(k)}</div></div>`);
  cards.unshift(`<div class="card" data-status=""><div class="n">${s.total}</div><div class="l">all pumps</div></div>`);
  cards.push(`<a class="card" href="/alerts"><div class="n">${s.openAnomalies}</div><div class="l">open anomalies</div></a>`);
  cards.push(`<a class="card" href="/alerts"><div class="n">${s.criticalAlarms}</div><div class="l">critical alarms</div></a>`);
  const el = document.getElementById('status-cards');
  el.innerHTML = cards.join('');
  el.dataset.version = s.version;
  el.querySelectorAll('[data-status]').forEach(c => c.addEventListener('click', () => {
    state.status = c.dataset.status; document.getElementById('filter-status').value = state.status; state.page = 1; loadPumps();
  }));
}

async function loadFacets() {
  const f = await api('/api/pumps/facets');
  for (const k of ['model', 'firmware', 'lot']) {
    const sel = document.getElementById('filter-' + k);
    const current = sel.value;
    sel.innerHTML = '<option value="">any</option>' + f[k].map(v => `<option>${esc(v)}</option>`).join('');
    sel.value = current;
  }
}

for (const k of ['status', 'model', 'firmware', 'lot']) {
  document.getElementById('filter-' + k).addEventListener('change', e => { state[k] = e.target.value; state.page = 1; loadPumps(); });
}
let typing;
document.getElementById('filter-q').addEventListener('input', e => {
  clearTimeout(typing);
  typing = setTimeout(() => { state.q = e.target.value.trim(); state.page = 1; loadPumps(); }, 250);
});
document.getElementById('page-size').addEventListener('change', e => { state.pageSize = +e.target.value; state.page = 1; loadPumps(); });
document.getElementById('prev').addEventListener('click', () => { state.page--; loadPumps(); });
document.getElementById('next').addEventListener('click', () => { state.page++; loadPumps(); });
document.querySelectorAll('th[data-sort]').forEach(th => th.addEventListener('click', () => {
  const key = th.dataset.sort;
  state.dir = state.sort === key && state.dir === 'asc' ? 'desc' : 'asc';
  state.sort = key;
  document.querySelectorAll('th[data-sort]').forEach(o => o.classList.remove('sorted', 'desc'));
  th.classList.add('sorted'); if (state.dir === 'desc') th.classList.add('desc');
  state.page = 1; loadPumps();
}));

await header('Fleet');
await Promise.all([loadSummary(), loadFacets(), loadPumps(), loadOverview().catch(e => showError(document.getElementById('chart-anomalies'), e))]);
live(s => { renderSummary(s); loadPumps(); });
