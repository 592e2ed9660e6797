/**
 * BullMQ priorities: 1 is the most urgent, and a job with no priority runs before all
 * prioritised ones, so Corral always sets one. Client priorities (1–100) are offset by
 * the job's source, so interactive requests outrank native jobs, which outrank batch lines.
 */
export const PRIORITY_BASE = {
  openai: 0,
  native: 100,
  batch: 1000,
} as const;

/** The priority a source gets when the client names none. */
export const DEFAULT_CLIENT_PRIORITY = 50;

export const bullPriority = (source: keyof typeof PRIORITY_BASE, clientPriority = DEFAULT_CLIENT_PRIORITY): number =>
  PRIORITY_BASE[source] + clientPriority;
