/**
 * Sends a message to the supervisor over the IPC channel, if it is still there. The
 * supervisor may die between the `connected` check and the write: with a callback, the
 * EPIPE comes to the callback instead of as an 'error' event on `process`, which would
 * crash the slot before it drains and removes its heartbeat. (The 'disconnect' event is
 * what stops an orphaned slot.)
 */
export function sendToSupervisor(message: unknown): void {
  if (process.connected) process.send?.(message, undefined, undefined, () => undefined);
}
