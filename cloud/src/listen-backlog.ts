/**
 * Connections the kernel queues for the HTTP and MQTT listeners before the cloud
 * accepts them (Linux caps it at net.core.somaxconn, 4096 by default since 5.4).
 * Node's default of 511 is less than what a large fleet sends at once: after a
 * cloud restart every device reconnects, and a one-wave rollout sends every
 * device to download its artifact. A 5,000-device wave overflowed it here
 * (the kernel logged SYN flooding on the HTTP port; downloads stalled and
 * failed); queued connections instead wait until the event loop takes them.
 */
export const LISTEN_BACKLOG = 4096;
