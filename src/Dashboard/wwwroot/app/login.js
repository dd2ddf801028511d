const q = new URLSearchParams(location.search);
document.getElementById('returnUrl').value = q.get('ReturnUrl') || '/';
document.getElementById('failed').hidden = !q.has('failed');
