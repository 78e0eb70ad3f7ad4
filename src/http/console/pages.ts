/** The console's own pages: minimal server-rendered HTML, no scripts, no external assets. */

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;justify-content:center}
main{background:#fff;margin-top:10vh;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002;width:20rem}
h1{font-size:1.2rem;margin:0 0 1rem}label{display:block;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}.error{color:#b00020}a{color:#2457c5}`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

/** The sign-in form; `error` is shown above it (already a safe, fixed text of ours). */
export function signInPage(options: { readonly next: string; readonly error?: string }): string {
  const error =
    options.error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(options.error)}</p>`;
  return page(
    'Sign in · gigwire console',
    `<h1>gigwire operators' console</h1>${error}
<form method="post" action="/admin/sign-in">
<input type="hidden" name="next" value="${escapeHtml(options.next)}">
<label for="login">Email or username</label><input id="login" name="login" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** Shown at /admin/sign-in and /admin/sign-out to someone already signed in. */
export function signedInPage(): string {
  return page(
    'gigwire console',
    `<h1>gigwire operators' console</h1>
<p>You are signed in. <a href="/admin/queues">Open the queues</a>.</p>
<form method="post" action="/admin/sign-out"><button type="submit">Sign out</button></form>`,
  );
}

export function forbiddenPage(): string {
  return page(
    'Forbidden · gigwire console',
    `<h1>Forbidden</h1><p>The operators' console is for admins only.</p>
<form method="post" action="/admin/sign-out"><button type="submit">Sign out</button></form>`,
  );
}
