import { burst, buildWorkload, spread, storyJobs, type SimWorkload } from "./workload.js";

/**
 * Issue 15's scenario: one slot of 4 sequences serving 64-token jobs at about 40 jobs/s,
 * tenants with equal shares. A submits `heavy` jobs at t=0; B submits `light` jobs spread
 * over 5 s from t=3 s; C submits `light` jobs at once at t=10 s. `scale` shrinks the
 * times and counts together (the real stack runs it smaller).
 */
export function issueScenario(
  options: { seed?: number; heavy?: number; light?: number; meanMs?: number; scale?: number } = {},
): SimWorkload {
  const scale = options.scale ?? 1;
  const shape = storyJobs(options.meanMs ?? 100);
  const light = options.light ?? 20;
  return buildWorkload(
    { slots: 1, sequences: 4 },
    [
      { tenant: "A", times: burst(options.heavy ?? Math.round(1000 * scale), 0), shape },
      { tenant: "B", times: spread(light, 3000 * scale, 5000 * scale), shape },
      { tenant: "C", times: burst(light, 10_000 * scale), shape },
    ],
    options.seed ?? 15,
  );
}
