// One rollout: waves advancing or rolling back with each gate's evidence; pause, resume, abort.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { usePoll } from './hooks.js';
import { html, Loading, ErrorBox, Empty, Badge, when } from './ui.js';
import { StateBadge, isActive } from './rollout-state.js';

function GateTable({ gates, active }) {
  if (gates.length === 0)
    return html`<p class="muted">
      ${active ? 'No gate evaluated yet.' : 'No gate was evaluated.'}
    </p>`;
  return html`<table class="gates">
    <thead>
      <tr>
        <th scope="col">Gate</th>
        <th scope="col">Result</th>
        <th scope="col">Measured</th>
        <th scope="col">Limit</th>
        <th scope="col">Evidence</th>
      </tr>
    </thead>
    <tbody>
      ${gates.map(
        (g) =>
          html`<tr>
            <th scope="row">${g.gate}</th>
            <td>
              ${g.passed ? html`<${Badge} kind="ok">passed<//>` : html`<${Badge} kind="bad">failed<//>`}
            </td>
            <td class="n">${g.value === null ? 'n/a' : +g.value.toFixed(4)}</td>
            <td class="n">${g.limit}</td>
            <td>${g.detail}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function Controls({ rollout, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const act = async (action) => {
    if (action === 'abort' && !confirm('Abort this rollout and send every moved device back?'))
      return;
    setBusy(true);
    setError(null);
    try {
      await api(`/v1/rollouts/${rollout.id}/${action}`, { method: 'POST' });
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  if (!isActive(rollout)) return null;
  return html`<div class="actions" role="group" aria-label="Rollout controls">
    ${
      rollout.state === 'paused'
        ? html`<button type="button" disabled=${busy} onClick=${() => act('resume')}>
            Resume
          </button>`
        : html`<button type="button" disabled=${busy} onClick=${() => act('pause')}>Pause</button>`
    }
    <button type="button" class="danger" disabled=${busy} onClick=${() => act('abort')}>
      Abort
    </button>
    ${error ? html`<${ErrorBox} error=${error} />` : null}
  </div>`;
}

/** "line=1 · ids a, b", or "all devices". */
function describeSelector(selector) {
  const parts = [];
  for (const [k, v] of Object.entries(selector?.labels ?? {})) parts.push(`${k}=${v}`);
  if (selector?.ids) parts.push(`ids ${selector.ids.join(', ')}`);
  return parts.length > 0 ? parts.join(' · ') : 'all devices';
}

export function RolloutPage({ id, session }) {
  const poll = usePoll(() => api(`/v1/rollouts/${encodeURIComponent(id)}`), 1000, isActive, [id]);
  const r = poll.data;
  if (poll.loading && !r) return html`<${Loading} what="the rollout" />`;
  if (!r) return html`<${ErrorBox} error=${poll.error} retry=${poll.reload} />`;
  const spec = r.spec;
  return html`<section aria-labelledby="rollout-title">
    <p><a href="#/rollouts">← Rollouts</a></p>
    <div class="page-head">
      <h1 id="rollout-title">${r.modelName} ${r.modelVersion}</h1>
      <span data-testid="rollout-state"><${StateBadge} state=${r.state} /></span>
      ${session.canWrite ? html`<${Controls} rollout=${r} onDone=${poll.reload} />` : null}
    </div>
    ${poll.error ? html`<${ErrorBox} error=${poll.error} retry=${poll.reload} />` : null}
    ${r.reason ? html`<p class="state ${r.state === 'completed' ? '' : 'error'}" data-testid="rollout-reason">${r.reason}</p>` : null}
    <dl class="facts">
      <div>
        <dt>Devices</dt>
        <dd>${r.deviceIds.length}</dd>
      </div>
      <div>
        <dt>Done</dt>
        <dd data-testid="rollout-done">${r.counts.done}</dd>
      </div>
      <div>
        <dt>Pending</dt>
        <dd>${r.counts.pending}</dd>
      </div>
      <div>
        <dt>Failed</dt>
        <dd>${r.counts.failed}</dd>
      </div>
      <div>
        <dt>Rolled back</dt>
        <dd>${r.counts.rolled_back}</dd>
      </div>
      <div>
        <dt>Started</dt>
        <dd>${when(r.createdAt)} by ${r.createdBy}</dd>
      </div>
      <div>
        <dt>Selector</dt>
        <dd>${describeSelector(spec?.selector)}</dd>
      </div>
      <div>
        <dt>Wave timeout</dt>
        <dd>${spec ? `${spec.waveTimeoutSec} s` : '–'}</dd>
      </div>
    </dl>
    ${
      r.shadow
        ? html`<section class="card">
            <h2>Shadow phase <${StateBadge} state=${r.shadow.state} /></h2>
            <${GateTable} gates=${r.shadow.gates} active=${isActive(r)} />
          </section>`
        : null
    }
    <h2>Waves</h2>
    ${
      r.waves.length === 0
        ? html`<${Empty}>This rollout has no waves.<//>`
        : html`<ol class="waves">
            ${r.waves.map(
              (w) =>
                html`<li class="card wave" data-wave=${w.index} data-state=${w.state}>
                  <h3>
                    ${`Wave ${w.index + 1}: ${w.percent}% · ${w.size} ${w.size === 1 ? 'device' : 'devices'} · soak ${w.soakSec} s`}
                    <${StateBadge} state=${w.state} />
                  </h3>
                  <p class="muted">
                    ${w.counts.done} done · ${w.counts.pending} pending · ${w.counts.failed} failed
                    · ${w.counts.rolled_back} rolled back
                    ${w.startedAt ? ` · started ${when(w.startedAt)}` : ''}
                    ${w.finishedAt ? ` · finished ${when(w.finishedAt)}` : ''}
                  </p>
                  <${GateTable} gates=${w.gates} active=${isActive(r)} />
                </li>`,
            )}
          </ol>`
    }
    <details>
      <summary>Devices (${r.devices.length})</summary>
      <table class="devices">
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Wave</th>
            <th scope="col">State</th>
            <th scope="col">Running</th>
            <th scope="col">Online</th>
          </tr>
        </thead>
        <tbody>
          ${r.devices.slice(0, 500).map(
            (d) =>
              html`<tr>
                <th scope="row"><a href=${`#/devices/${encodeURIComponent(d.id)}`}>${d.id}</a></th>
                <td class="n">${d.wave + 1}</td>
                <td>
                  <${StateBadge}
                    state=${d.state}
                  />${d.error ? html` <span class="muted">${d.error}</span>` : null}
                </td>
                <td>${d.running ?? '–'}</td>
                <td>${d.online ? 'yes' : 'no'}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </details>
  </section>`;
}
