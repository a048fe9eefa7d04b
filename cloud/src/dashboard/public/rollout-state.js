// How rollout, wave and gate states look.
import { html, Badge } from './ui.js';

const ACTIVE = new Set(['pending', 'shadow', 'in_progress', 'paused']);
const KIND = {
  completed: 'ok',
  passed: 'ok',
  in_progress: 'warn',
  applying: 'warn',
  soaking: 'warn',
  running: 'warn',
  shadow: 'warn',
  pending: 'muted',
  waiting: 'muted',
  paused: 'muted',
  skipped: 'muted',
  rolled_back: 'bad',
  aborted: 'bad',
  failed: 'bad',
};

export function isActive(rollout) {
  return ACTIVE.has(rollout.state);
}

export function StateBadge({ state }) {
  return html`<${Badge} kind=${KIND[state] ?? 'muted'}>${state.replace('_', ' ')}<//>`;
}
