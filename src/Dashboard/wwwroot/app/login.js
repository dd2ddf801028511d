const q = new URLSearchParams(location.search);
document.getElementById('returnUrl').value = q.get('ReturnUrl') || '/';
document.getElementById('failed').hidden = !q.has('failed');
const token = document.cookie.match(/(?:^|;\s*)XSRF-TOKEN=([^;]*)/);
document.getElementById('xsrf').value = token ? decodeURIComponent(token[1]) : '';
// The page is ready (the browser tests wait for this).
document.body.dataset.loaded = 'true';
