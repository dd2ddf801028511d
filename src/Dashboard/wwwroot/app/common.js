// Shared helpers of the dashboard pages: API calls with problem-details errors, formatting, the header and live updates.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// The antiforgery request token, which the server puts in a readable cookie on every page (docs/security.md).
export function xsrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)XSRF-TOKEN=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : '';
}

export async function api(path, options = {}) {
  const unsafe = options.method && options.method !== 'GET';
  const res = await fetch(path, {
    credentials: 'same-origin',
    ...options,
    headers: {
      'Accept': 'application/json',
      ...(options.body ? { 'Content-Type': 'application/json' } : {}),
      ...(unsafe ? { 'X-XSRF-TOKEN': xsrfToken() } : {}),
    },
  });
  if (res.status === 401) { location.href = '/login?ReturnUrl=' + encodeURIComponent(location.pathname + location.search); throw new ApiError(401); }
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

export const fmtTime = t => t ? new Date(t).toISOString().replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, 'Z') : '—';
export const fmtNum = (v, d = 2) => v === null || v === undefined ? '—' : Number(v).toFixed(d);
export const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
export const badge = s => `<span class="badge ${esc(s)}">${esc(s)}</span>`;

export function relative(t) {
  if (!t) return '—';
  const s = (Date.now() - new Date(t).getTime()) / 1000;
  if (s < 0) return 'in ' + relativeSpan(-s);
  return relativeSpan(s) + ' ago';
}
function relativeSpan(s) {
  if (s < 90) return Math.round(s) + ' s';
  if (s < 5400) return Math.round(s / 60) + ' min';
  if (s < 172800) return Math.round(s / 3600) + ' h';
  return Math.round(s / 86400) + ' d';
}

export async function header(active) {
  const el = document.querySelector('header.top');
  const links = [['/', 'Fleet'], ['/alerts', 'Alerts'], ['/therapy', 'Therapies'], ['/surveillance', 'Surveillance'], ['/worklist', 'Worklist'], ['/audit', 'Audit'], ['/orleans/', 'Orleans']];
  el.innerHTML = `<span class="brand">PumpFleet</span>` +
    links.map(([href, label]) => `<a href="${href}" class="${label === active ? 'active' : ''}">${label}</a>`).join('') +
    `<span class="who" id="who"></span>`;
  try {
    const me = await api('/api/me');
    document.getElementById('who').innerHTML = `${esc(me.name)} (${esc(me.roles.at(-1) ?? 'none')})` +
      (me.mode === 'Local' ? '' : ` · <form method="post" action="/auth/logout" class="inline"><input type="hidden" name="__RequestVerificationToken" value="${esc(xsrfToken())}"><button class="secondary">Sign out</button></form>`);
    return me;
  } catch { return null; }
}

// Live updates (/api/live, one feed per server process): 'fleet' whenever a projection applied new events (the
// summary itself: counts by status, open anomalies, critical alarms), and, pushed from the event log as events commit,
// 'anomaly' (an anomaly opened, acknowledged or resolved: id, serial, status and what the event carries) and 'pump' (an
// event that can change a pump's status: serial, type). `on` maps those names to handlers. `onChange(summary)` runs,
// debounced, on every 'fleet' message but the first of each connection; `onConnect(summary)` runs on that first one:
// EventSource reconnects by itself after a network error, messages sent meanwhile are lost, so a page re-reads its
// state there (default: onChange). A page that applies the pushed messages passes no onChange and re-reads only on
// connect. body[data-live-connects] counts the connections whose first read is done, body[data-live-handled] is the
// version of the last summary handled (tests wait on them).
export function live(onChange, on = {}, onConnect = onChange) {
  const source = new EventSource('/api/live');
  let timer = null, fresh = true;
  source.addEventListener('open', () => { fresh = true; });
  source.addEventListener('fleet', e => {
    const summary = JSON.parse(e.data);
    if (fresh) {
      fresh = false;
      clearTimeout(timer);
      Promise.resolve(onConnect?.(summary)).finally(() => {
        document.body.dataset.liveConnects = String(+(document.body.dataset.liveConnects ?? 0) + 1);
        document.body.dataset.liveHandled = summary.version;
      });
      return;
    }
    clearTimeout(timer);
    timer = setTimeout(() => { onChange?.(summary); document.body.dataset.liveHandled = summary.version; }, 100);
  });
  for (const [name, handler] of Object.entries(on)) {
    source.addEventListener(name, e => handler(JSON.parse(e.data)));
  }
  return source;
}

export function showError(el, err) {
  el.innerHTML = `<p class="error">${esc(err.message)}</p>`;
}
