// A sampled frame with its anomaly map laid over it (review queue, device page).
import { html } from './ui.js';

/** The frame sizes the box, so the map laid over it covers exactly the frame. */
export function FrameView({
  imageUrl,
  mapUrl,
  alt,
  showMap = true,
  opacity = 0.55,
  onError,
  small,
}) {
  return html`<div class=${small ? 'viewer viewer-small' : 'viewer'} data-testid="frame-view">
    <img class="frame" src=${imageUrl} alt=${alt} onError=${onError} />
    ${
      showMap && mapUrl
        ? html`<img
            class="map"
            src=${mapUrl}
            alt=""
            aria-hidden="true"
            style=${`opacity:${opacity}`}
            onError=${onError}
          />`
        : null
    }
  </div>`;
}
