// The dashboard shell: sign-in, navigation by hash route, one page module loaded at a time.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, getToken, setToken, onUnauthorized } from './api.js';
import { stopFleet } from './fleet-store.js';
import { html, Loading, ErrorBox } from './ui.js';
import { SignIn } from './sign-in.js';

const PAGES = {
  fleet: () => import('./fleet-page.js').then((m) => m.FleetPage),
  device: () => import('./device-page.js').then((m) => m.DevicePage),
  models: () => import('./models-page.js').then((m) => m.ModelsPage),
  rollouts: () => import('./rollouts-page.js').then((m) => m.RolloutsPage),
  rollout: () => import('./rollout-page.js').then((m) => m.RolloutPage),
  drift: () => import('./drift-page.js').then((m) => m.DriftPage),
  review: () => import('./review-page.js').then((m) => m.ReviewPage),
};

/** #/fleet, #/devices/<id>, #/models, #/rollouts, #/rollouts/<id>, #/drift[/<device>], #/review. */
function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'devices' && parts[1]) return { page: 'device', id: parts[1] };
  if (parts[0] === 'rollouts' && parts[1]) return { page: 'rollout', id: parts[1] };
  if (parts[0] === 'drift') return parts[1] ? { page: 'drift', id: parts[1] } : { page: 'drift' };
  if (parts[0] === 'models' || parts[0] === 'rollouts' || parts[0] === 'review')
    return { page: parts[0] };
  return { page: 'fleet' };
}

function useRoute() {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

function Page({ route, session }) {
  const [loaded, setLoaded] = useState({ page: null, Component: null, error: null });
  useEffect(() => {
    let live = true;
    PAGES[route.page]().then(
      (Component) => live && setLoaded({ page: route.page, Component, error: null }),
      (error) => live && setLoaded({ page: route.page, Component: null, error }),
    );
    return () => {
      live = false;
    };
  }, [route.page]);
  if (loaded.error) return html`<${ErrorBox} error=${loaded.error} />`;
  if (loaded.page !== route.page || !loaded.Component) return html`<${Loading} what="the page" />`;
  return html`<${loaded.Component} ...${route} session=${session} />`;
}

const NAV = [
  ['fleet', '#/fleet', 'Fleet'],
  ['models', '#/models', 'Models'],
  ['rollouts', '#/rollouts', 'Rollouts'],
  ['drift', '#/drift', 'Drift'],
  ['review', '#/review', 'Review'],
];

// Started at once, beside loading the page's module, rather than one after the other.
let initialSession = getToken() !== null ? api('/v1/dashboard/session') : null;
initialSession?.catch(() => undefined);
if (getToken() !== null) void PAGES[parseRoute(location.hash).page]().catch(() => undefined);

function App() {
  const route = useRoute();
  const [session, setSession] = useState(null);
  const [checking, setChecking] = useState(getToken() !== null);
  const [notice, setNotice] = useState(null);

  const signOut = (message) => {
    setToken(null);
    stopFleet();
    setSession(null);
    setNotice(message ?? null);
  };

  useEffect(() => onUnauthorized(() => signOut('The token was refused; sign in again.')), []);
  useEffect(() => {
    if (!checking) return;
    (initialSession ?? api('/v1/dashboard/session')).then(
      (s) => {
        initialSession = null;
        setSession(s);
        setChecking(false);
      },
      (err) => {
        initialSession = null;
        setChecking(false);
        if (err.status !== 401) setNotice(err.message);
      },
    );
  }, [checking]);

  if (checking) return html`<${Loading} what="your session" />`;
  if (session === null)
    return html`<${SignIn}
      notice=${notice}
      onSignedIn=${(s) => {
        setNotice(null);
        setSession(s);
      }}
    />`;
  const section =
    route.page === 'device' ? 'fleet' : route.page === 'rollout' ? 'rollouts' : route.page;
  return html`
    <header class="top">
      <a class="brand" href="#/fleet">Linesight</a>
      <nav aria-label="Sections">
        ${NAV.map(
          ([key, href, label]) =>
            html`<a href=${href} aria-current=${section === key ? 'page' : undefined}>${label}</a>`,
        )}
      </nav>
      <span class="who">
        <span data-testid="actor">${session.actor}</span>
        <span class="badge badge-muted" data-testid="role">${session.role}</span>
        <button type="button" class="link" onClick=${() => signOut(null)}>Sign out</button>
      </span>
    </header>
    <main id="main"><${Page} route=${route} session=${session} /></main>
  `;
}

const root = document.getElementById('app');
// Replace the static "Loading" note: render() adds to what the container holds.
root.replaceChildren();
render(html`<${App} />`, root);
