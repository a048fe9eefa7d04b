// Models: versions by name with stage, metrics and lineage; approve, stage changes and archive.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { useResource } from './hooks.js';
import { html, Loading, ErrorBox, Empty, Badge, when } from './ui.js';

const STAGES = ['candidate', 'staging', 'production', 'archived'];
const STAGE_KIND = { production: 'ok', staging: 'warn', candidate: 'muted', archived: 'off' };

/** The parent chain of a version, newest first: 1.2.0 ← 1.1.0 ← 1.0.0. */
function lineage(model, byVersion) {
  const chain = [];
  const seen = new Set();
  for (let v = model.parentVersion; v && !seen.has(v) && chain.length < 20;) {
    seen.add(v);
    chain.push(v);
    v = byVersion.get(v)?.parentVersion ?? null;
  }
  return chain;
}

/** Numbers among the training record (one level deep), for the metrics column. */
function metrics(training) {
  if (!training || typeof training !== 'object') return [];
  const out = [];
  for (const [k, v] of Object.entries(training)) {
    if (typeof v === 'number') out.push([k, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v))
      for (const [k2, v2] of Object.entries(v))
        if (typeof v2 === 'number') out.push([`${k}.${k2}`, v2]);
  }
  return out.slice(0, 8);
}

function Actions({ model, onChanged }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [stage, setStage] = useState(model.stage);
  const path = `/v1/models/${encodeURIComponent(model.name)}/${encodeURIComponent(model.version)}`;
  const run = async (what, body) => {
    setBusy(true);
    setError(null);
    try {
      await api(`${path}/${what}`, { method: 'POST', body });
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const label = `${model.name} ${model.version}`;
  return html`<div class="actions">
    ${
      model.approvedBy === null
        ? html`<button
            type="button"
            disabled=${busy}
            onClick=${() => run('approve', {})}
            aria-label=${`Approve ${label}`}
          >
            Approve
          </button>`
        : null
    }
    <select
      aria-label=${`Stage of ${label}`}
      value=${stage}
      onChange=${(e) => setStage(e.currentTarget.value)}
    >
      ${STAGES.map((s) => html`<option value=${s}>${s}</option>`)}
    </select>
    <button
      type="button"
      disabled=${busy || stage === model.stage}
      onClick=${() => run('stage', { stage })}
    >
      Set stage
    </button>
    ${
      model.stage !== 'archived'
        ? html`<button
            type="button"
            class="quiet"
            disabled=${busy}
            onClick=${() => run('stage', { stage: 'archived' })}
            aria-label=${`Archive ${label}`}
          >
            Archive
          </button>`
        : null
    }
    ${error ? html`<${ErrorBox} error=${error} />` : null}
  </div>`;
}

export function ModelsPage({ session }) {
  const models = useResource(() => api('/v1/models'), []);
  if (models.loading && !models.data) return html`<${Loading} what="models" />`;
  if (!models.data) return html`<${ErrorBox} error=${models.error} retry=${models.reload} />`;
  const byName = new Map();
  for (const m of models.data) {
    if (!byName.has(m.name)) byName.set(m.name, []);
    byName.get(m.name).push(m);
  }
  return html`<section aria-labelledby="models-title">
    <div class="page-head"><h1 id="models-title">Models</h1></div>
    ${models.error ? html`<${ErrorBox} error=${models.error} retry=${models.reload} />` : null}
    ${
      byName.size === 0
        ? html`<${Empty}
            >No model versions yet. Train one with <code>linesight model train</code> and register
            it with <code>linesight model publish</code>.<//
          >`
        : [...byName].map(([name, versions]) => {
            const byVersion = new Map(versions.map((m) => [m.version, m]));
            return html`<section class="model" aria-labelledby=${`model-${name}`}>
              <h2 id=${`model-${name}`}>${name}</h2>
              <table class="models">
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">Stage</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Threshold</th>
                    <th scope="col">Metrics</th>
                    <th scope="col">Lineage</th>
                    <th scope="col">Registered</th>
                    <th scope="col">Approved</th>
                    ${session.canWrite ? html`<th scope="col">Actions</th>` : null}
                  </tr>
                </thead>
                <tbody>
                  ${versions.map(
                    (m) =>
                      html`<tr data-version=${m.version}>
                        <th scope="row">${m.version}</th>
                        <td><${Badge} kind=${STAGE_KIND[m.stage] ?? 'muted'}>${m.stage}<//></td>
                        <td>${m.kind}</td>
                        <td class="n">${m.threshold.toFixed(3)}</td>
                        <td class="metrics">
                          ${metrics(m.training).map(([k, v]) => html`<span>${k} <b>${Number.isInteger(v) ? v : v.toFixed(3)}</b></span>`)}
                        </td>
                        <td>${[m.version, ...lineage(m, byVersion)].join(' ← ')}</td>
                        <td>
                          ${when(m.createdAt)}<br /><span class="muted">by ${m.createdBy}</span>
                        </td>
                        <td>
                          ${m.approvedBy ? html`${m.approvedBy}<br /><span class="muted">${when(m.approvedAt)}</span>` : '–'}
                        </td>
                        ${session.canWrite ? html`<td><${Actions} key=${`${m.version}:${m.stage}:${m.approvedBy}`} model=${m} onChanged=${models.reload} /></td>` : null}
                      </tr>`,
                  )}
                </tbody>
              </table>
            </section>`;
          })
    }
  </section>`;
}
