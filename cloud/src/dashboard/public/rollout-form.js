// The new-rollout form: model version, selector, waves with soak, gates with the cloud's defaults shown.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { html, ErrorBox } from './ui.js';

const GATE_HELP = {
  maxErrorRate: 'largest rise of (unknown + errors) per frame over the baseline',
  maxP99LatencyRatio: 'wave p99 latency / baseline p99',
  maxP50LatencyRatio: 'wave median latency / baseline median',
  minLatencyIncreaseMs: 'a latency ratio fails only when also this many ms slower',
  maxDefectRateChange: 'largest significant change of the defect rate (share of frames)',
  maxRefusedOrCrashed: 'devices that may refuse the version or crash-loop on it',
};

/** "team=a, line=2" -> { team: 'a', line: '2' }; throws on a part without "=". */
function parseLabels(text) {
  const labels = {};
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`label "${part}" needs the form key=value`);
    labels[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return labels;
}

/** "1, 10, 50, 100" -> cumulative wave percents. */
function parsePercents(text) {
  const percents = text.split(',').map((s) => Number(s.trim()));
  if (percents.length === 0 || percents.some((p) => !(p > 0 && p <= 100)))
    throw new Error('waves are percents above 0 and at most 100, separated by commas');
  return percents;
}

export function RolloutForm({ models, gateDefaults, onCreated }) {
  const usable = models.filter((m) => m.stage !== 'archived');
  const [version, setVersion] = useState(usable[0] ? `${usable[0].name}@${usable[0].version}` : '');
  const [labels, setLabels] = useState('');
  const [ids, setIds] = useState('');
  const [waves, setWaves] = useState('10, 50, 100');
  const [soakSec, setSoakSec] = useState('30');
  const [gates, setGates] = useState(() =>
    Object.fromEntries(Object.entries(gateDefaults).map(([k, v]) => [k, String(v)])),
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    let body;
    try {
      const [model, modelVersion] = version.split('@');
      const selector = {};
      const labelSet = parseLabels(labels);
      if (Object.keys(labelSet).length > 0) selector.labels = labelSet;
      const idList = ids
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (idList.length > 0) selector.ids = idList;
      const soak = Number(soakSec);
      if (!(soak >= 0)) throw new Error('soak must be 0 or more seconds');
      body = {
        model,
        version: modelVersion,
        selector,
        waves: parsePercents(waves).map((percent) => ({ percent, soakSec: soak })),
        gates: Object.fromEntries(
          Object.entries(gates).map(([k, v]) => {
            const n = Number(v);
            if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`gate ${k} needs a number`);
            return [k, n];
          }),
        ),
      };
    } catch (err) {
      setError({ code: 'Form', message: err.message });
      return;
    }
    setBusy(true);
    try {
      onCreated(await api('/v1/rollouts', { method: 'POST', body }));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  if (usable.length === 0)
    return html`<p class="state empty">Register a model version before starting a rollout.</p>`;
  return html`<form class="rollout-form" onSubmit=${submit} aria-label="New rollout">
    <fieldset>
      <legend>What and where</legend>
      <label
        >Model version
        <select
          name="version"
          value=${version}
          onChange=${(e) => setVersion(e.currentTarget.value)}
          required
        >
          ${usable.map((m) => html`<option value=${`${m.name}@${m.version}`}>${m.name} ${m.version} (${m.stage})</option>`)}
        </select>
      </label>
      <label
        >Labels
        <input
          name="labels"
          value=${labels}
          placeholder="line=2, site=north (all devices when empty)"
          onInput=${(e) => setLabels(e.currentTarget.value)}
      /></label>
      <label
        >Device ids
        <input
          name="ids"
          value=${ids}
          placeholder="optional: dev-1, dev-2"
          onInput=${(e) => setIds(e.currentTarget.value)}
      /></label>
    </fieldset>
    <fieldset>
      <legend>Waves</legend>
      <label
        >Cumulative percents
        <input
          name="waves"
          value=${waves}
          required
          onInput=${(e) => setWaves(e.currentTarget.value)}
      /></label>
      <label
        >Soak per wave (s)
        <input
          name="soakSec"
          type="number"
          min="0"
          max="86400"
          value=${soakSec}
          required
          onInput=${(e) => setSoakSec(e.currentTarget.value)}
      /></label>
    </fieldset>
    <fieldset class="gates">
      <legend>Gates (cloud defaults filled in)</legend>
      ${Object.entries(gateDefaults).map(
        ([k, def]) =>
          html`<label title=${GATE_HELP[k] ?? ''}
            >${k}
            <input
              name=${`gate-${k}`}
              type="number"
              step="any"
              min="0"
              value=${gates[k]}
              onInput=${(e) => setGates((g) => ({ ...g, [k]: e.currentTarget.value }))}
            />
            <span class="hint">default ${def}${GATE_HELP[k] ? ` · ${GATE_HELP[k]}` : ''}</span>
          </label>`,
      )}
    </fieldset>
    ${error ? html`<${ErrorBox} error=${error} />` : null}
    <button type="submit" disabled=${busy}>${busy ? 'Starting…' : 'Start rollout'}</button>
  </form>`;
}
