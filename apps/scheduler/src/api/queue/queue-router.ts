import { Router, type Request, type Response } from "express";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { laneName, readLaneRate, type RedisKeys } from "@corral/shared";
import type { ModelCatalogView } from "../../catalog/types.js";
import type { LaneQueues } from "../../jobs/lane-queues.js";

export interface QueueRouterOptions {
  lanes: LaneQueues;
  catalog: ModelCatalogView;
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** One model's line of `GET /v1/queue`: counts over every tenant, never ids or tenants. */
export interface QueueModel {
  object: "queue.model";
  model: string;
  /** Jobs waiting for a slot (held for fair claim or released to the lane). */
  waiting: number;
  running: number;
  /** Jobs the lane finished per second over the last minute; null when none finished. */
  rate_per_second: number | null;
  /** waiting ÷ rate (ms): roughly how long a job queued now waits; 0 with nothing waiting, null without a rate. */
  expected_wait_ms: number | null;
}

/**
 * Mounted at `/v1/queue`: `GET /v1/queue`, per model the jobs waiting and running and the
 * expected wait, for any authenticated caller. These are counts over all tenants: no job
 * id, tenant or prompt is in the answer, so a tenant learns how busy a model is and nothing
 * about whose work it is. Every catalog model is listed (zeros when idle), and any other
 * lane that still has jobs.
 */
export function queueRouter(options: QueueRouterOptions): Router {
  const now = options.now ?? Date.now;
  const router = Router();
  router.get("/", async (_req: Request, res: Response) => {
    const counts = await options.lanes.counts();
    const byLane = new Map(counts.map((c) => [c.lane, c]));
    const models = new Set(options.catalog.list().map((m) => m.id));
    for (const c of counts) if (c.waiting + c.active > 0) models.add(c.model);
    const at = now();
    const data: QueueModel[] = await Promise.all(
      [...models].sort().map(async (model) => {
        const lane = laneName(model);
        const c = byLane.get(lane);
        const waiting = c?.waiting ?? 0;
        const running = c?.active ?? 0;
        let rate: number | null = null;
        if (c) {
          try {
            rate = await readLaneRate(options.redis, options.keys, lane, { now: at });
          } catch (error) {
            options.logger.warn({ err: error, lane }, "could not read a lane's completion rate");
          }
        }
        const expected = waiting === 0 ? 0 : rate === null ? null : Math.round((waiting / rate) * 1000);
        return {
          object: "queue.model" as const,
          model,
          waiting,
          running,
          rate_per_second: rate === null ? null : Math.round(rate * 1000) / 1000,
          expected_wait_ms: expected,
        };
      }),
    );
    res.json({ object: "list", data });
  });
  return router;
}
