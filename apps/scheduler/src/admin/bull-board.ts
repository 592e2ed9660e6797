import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { Queue } from "bullmq";
import { Router, type RequestHandler } from "express";

export interface BullBoardRouterOptions {
  /**
   * The lanes to show. Called before each request the board serves, so lanes created
   * after start-up (a model's first job) appear without a restart. May be async, e.g.
   * `async () => (await lanes.known()).map((lane) => lanes.get(lane))`.
   */
  queues: () => readonly Queue[] | Promise<readonly Queue[]>;
  /**
   * The path the router is mounted at; the board's HTML and API calls use it.
   * @defaultValue "/admin/queues"
   */
  basePath?: string;
  /**
   * Hide the buttons that change jobs (retry, remove, clean, pause, add).
   * @defaultValue false
   */
  readOnly?: boolean;
  /**
   * Title in the board's header.
   * @defaultValue "Corral"
   */
  title?: string;
}

/**
 * An express router serving bull-board over every lane. Mount it at `basePath`, behind
 * the admin check (it has no authentication of its own):
 *
 * ```ts
 * app.use("/admin/queues", adminAuth(authenticator), createBullBoardRouter({ queues, basePath: "/admin/queues" }));
 * ```
 */
export function createBullBoardRouter(options: BullBoardRouterOptions): Router {
  const basePath = options.basePath ?? "/admin/queues";
  if (!basePath.startsWith("/")) throw new Error(`basePath must start with "/" (got ${JSON.stringify(basePath)})`);
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(basePath.replace(/\/+$/, ""));
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: { uiConfig: { boardTitle: options.title ?? "Corral", hideDocsLink: true } },
  });

  // The adapters are rebuilt only when the set of lanes changes (by queue identity, so a
  // lane whose Queue was replaced after a restart of LaneQueues is picked up too).
  let shown: readonly Queue[] = [];
  let refreshing: Promise<void> | null = null;
  const refresh = (): Promise<void> => {
    refreshing ??= (async () => {
      try {
        const queues = [...(await options.queues())].sort((a, b) => a.name.localeCompare(b.name));
        const same = queues.length === shown.length && queues.every((queue, i) => queue === shown[i]);
        if (same) return;
        board.replaceQueues(
          queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode: options.readOnly ?? false })),
        );
        shown = queues;
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  };

  const refreshLanes: RequestHandler = async (_req, _res, next) => {
    await refresh();
    next();
  };
  const router = Router();
  router.use(refreshLanes);
  router.use(serverAdapter.getRouter() as RequestHandler);
  return router;
}
