// Rollouts: the list (newest first, refreshed while any is active) and the new-rollout form.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { usePoll, useResource } from './hooks.js';
import { html, Loading, ErrorBox, Empty, when } from './ui.js';
import { RolloutForm } from './rollout-form.js';
import { StateBadge, isActive } from './rollout-state.js';

export function RolloutsPage({ session }) {
  const rollouts = usePoll(
    () => api('/v1/rollouts?devices=false'),
    2000,
    (list) => list.some(isActive),
    [],
  );
  const models = useResource(() => api('/v1/models'), []);
  const [formOpen, setFormOpen] = useState(false);
  return html`<section aria-labelledby="rollouts-title">
    <div class="page-head"><h1 id="rollouts-title">Rollouts</h1></div>
    ${
      session.canWrite
        ? html`<details
            class="card"
            open=${formOpen}
            onToggle=${(e) => setFormOpen(e.currentTarget.open)}
          >
            <summary>New rollout</summary>
            ${
              models.loading && !models.data
                ? html`<${Loading} what="model versions" />`
                : models.data
                  ? html`<${RolloutForm}
                      models=${models.data}
                      gateDefaults=${session.gateDefaults}
                      onCreated=${(r) => (location.hash = `#/rollouts/${r.id}`)}
                    />`
                  : html`<${ErrorBox} error=${models.error} retry=${models.reload} />`
            }
          </details>`
        : null
    }
    ${rollouts.error ? html`<${ErrorBox} error=${rollouts.error} retry=${rollouts.reload} />` : null}
    ${
      rollouts.loading && !rollouts.data
        ? html`<${Loading} what="rollouts" />`
        : !rollouts.data
          ? null
          : rollouts.data.length === 0
            ? html`<${Empty}>No rollouts yet.<//>`
            : html`<table class="rollouts">
                <thead>
                  <tr>
                    <th scope="col">Model</th>
                    <th scope="col">State</th>
                    <th scope="col">Waves</th>
                    <th scope="col">Devices</th>
                    <th scope="col">Started</th>
                    <th scope="col">By</th>
                  </tr>
                </thead>
                <tbody>
                  ${rollouts.data.map(
                    (r) =>
                      html`<tr data-rollout=${r.id}>
                        <th scope="row">
                          <a href=${`#/rollouts/${r.id}`}>${r.modelName} ${r.modelVersion}</a>
                        </th>
                        <td><${StateBadge} state=${r.state} /></td>
                        <td>
                          ${r.waves.filter((w) => w.state === 'passed').length} / ${r.waves.length}
                        </td>
                        <td class="n">
                          ${isActive(r) ? `${r.counts.done} done of ${r.deviceIds.length}` : r.deviceIds.length}
                        </td>
                        <td>${when(r.createdAt)}</td>
                        <td>${r.createdBy}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
    }
  </section>`;
}
