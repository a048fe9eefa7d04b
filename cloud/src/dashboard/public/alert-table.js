// A table of drift and camera alerts, shared by the drift and device pages.
import { html, Badge, ago, when } from './ui.js';

function AlertRow({ a }) {
  return html`<tr
    data-alert=${a.id}
    data-state=${a.state}
    data-device=${a.deviceId}
    class=${a.state === 'open' ? '' : 'resolved'}
  >
    <td>
      ${
        a.state === 'open'
          ? html`<${Badge} kind=${a.level === 'alert' ? 'bad' : 'warn'}>${a.level}<//>`
          : html`<${Badge} kind="off">resolved<//>`
      }
    </td>
    <td>${a.kind}</td>
    <th scope="row"><a href=${`#/drift/${encodeURIComponent(a.deviceId)}`}>${a.deviceId}</a></th>
    <td>${a.modelName ? `${a.modelName} ${a.modelVersion}` : '–'}</td>
    <td>${a.feature}</td>
    <td>${a.statistic}</td>
    <td class="n" title=${`peak ${a.peakValue}`}>${a.value.toFixed(3)}</td>
    <td class="n">${a.frames}</td>
    <td><time datetime=${a.openedAt} title=${when(a.openedAt)}>${ago(a.openedAt)}</time></td>
    <td>
      ${
        a.resolvedAt
          ? html`resolved <time datetime=${a.resolvedAt}>${ago(a.resolvedAt)}</time>`
          : html`<time datetime=${a.updatedAt}>${ago(a.updatedAt)}</time>`
      }
    </td>
  </tr>`;
}

/** Alerts with level, kind, device, model, feature, statistic, value, frames and times. */
export function AlertTable({ alerts, caption }) {
  return html`<div class="table-scroll">
    <table class="alerts">
      <caption class="sr-only">
        ${caption}
      </caption>
      <thead>
        <tr>
          <th scope="col">Level</th>
          <th scope="col">Kind</th>
          <th scope="col">Device</th>
          <th scope="col">Model</th>
          <th scope="col">Feature</th>
          <th scope="col">Statistic</th>
          <th scope="col">Value</th>
          <th scope="col">Frames</th>
          <th scope="col">Opened</th>
          <th scope="col">Updated</th>
        </tr>
      </thead>
      <tbody>
        ${alerts.map((a) => html`<${AlertRow} key=${a.id} a=${a} />`)}
      </tbody>
    </table>
  </div>`;
}
