// Sign-in: the token goes to sessionStorage (gone when the tab closes), never into the URL.
import { useState } from 'preact/hooks';
import { api, setToken } from './api.js';
import { html } from './ui.js';

export function SignIn({ notice, onSignedIn }) {
  const [token, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setToken(token.trim());
    try {
      onSignedIn(await api('/v1/dashboard/session'));
    } catch (err) {
      setToken(null);
      setError(err.status === 401 ? 'That token was not accepted.' : err.message);
      setBusy(false);
    }
  };
  return html`<main class="sign-in">
    <form method="post" action="#" onSubmit=${submit} aria-describedby="sign-in-help">
      <h1>Linesight</h1>
      <p id="sign-in-help">
        Sign in with an operator token (<code>POST /v1/tokens</code>) or the admin token the cloud
        printed when it started. It is kept for this tab only.
      </p>
      ${notice ? html`<p class="state error" role="alert">${notice}</p>` : null}
      <label for="token">API token</label>
      <input
        id="token"
        name="token"
        type="password"
        autocomplete="current-password"
        required
        autofocus
        value=${token}
        onInput=${(e) => setValue(e.currentTarget.value)}
      />
      ${error ? html`<p class="state error" role="alert">${error}</p>` : null}
      <button type="submit" disabled=${busy || token.trim() === ''}>
        ${busy ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  </main>`;
}
