import type { Logger } from "pino";
import {
  BatchCreateRequest,
  ConflictError,
  InvalidRequestError,
  NotFoundError,
  TenantLimitError,
  ValidationError,
  type BatchObject,
  type StoredBatch,
} from "@corral/shared";
import type { FileService } from "../files/file-service.js";
import { assertBatchId, inputCopyName, newBatchId } from "./batch-id.js";
import type { BatchRunner } from "./batch-runner.js";
import type { BatchStore } from "./batch-store.js";

export interface BatchServiceOptions {
  store: BatchStore;
  files: FileService;
  runner: BatchRunner;
  logger: Logger;
  /**
   * Throws when the tenant may not start new work (its daily token budget is used up);
   * checked once per batch, at creation. @defaultValue admits every tenant
   */
  admit?: (tenant: string) => void;
  /** Most unfinished batches per tenant; one more is a 429 `too_many_batches`. @defaultValue 100 */
  maxActivePerTenant?: number;
  /** @defaultValue Date.now */
  clock?: () => number;
  /** Waits for replicas before a created batch is answered (CORRAL_REDIS_WAIT_REPLICAS). @defaultValue no wait */
  acknowledge?: (what: string) => Promise<void>;
}

/** The only completion window OpenAI (and Corral) accept. */
export const COMPLETION_WINDOW_MS = 24 * 3600 * 1000;

/** A page of batches, newest first, in OpenAI's list shape. */
export interface BatchPage {
  object: "list";
  data: BatchObject[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/**
 * The batches API (`/v1/batches`): create, read, list, cancel. The work itself is the
 * {@link BatchRunner}'s; this service records what clients ask for and wakes the runner.
 * Every method sees only the tenant's own batches; another tenant's is "not found".
 */
export class BatchService {
  readonly #store: BatchStore;
  readonly #files: FileService;
  readonly #runner: BatchRunner;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #admit: (tenant: string) => void;
  readonly #maxActive: number;
  readonly #acknowledge: (what: string) => Promise<void>;

  constructor(options: BatchServiceOptions) {
    this.#store = options.store;
    this.#files = options.files;
    this.#runner = options.runner;
    this.#logger = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#admit = options.admit ?? (() => {});
    this.#maxActive = options.maxActivePerTenant ?? 100;
    this.#acknowledge = options.acknowledge ?? (async () => {});
  }

  /** Creates a batch over an uploaded `purpose=batch` file; it starts `validating`. */
  async create(tenant: string, body: unknown): Promise<BatchObject> {
    const parsed = BatchCreateRequest.safeParse(body);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error);
    const request = parsed.data;
    const input = await this.#files.get(tenant, request.input_file_id, "input_file_id");
    if (input.purpose !== "batch") {
      throw new InvalidRequestError(
        `File ${input.id} has purpose \`${input.purpose}\`; a batch needs a file uploaded with purpose \`batch\`.`,
        "input_file_id",
      );
    }
    this.#admit(tenant);
    const id = newBatchId();
    if (!(await this.#store.admitActive(tenant, id, this.#maxActive))) {
      throw new TenantLimitError(
        `Tenant ${tenant} already has ${this.#maxActive} unfinished batches (CORRAL_MAX_ACTIVE_BATCHES_PER_TENANT). ` +
          `Wait for one to finish, or cancel one.`,
        "too_many_batches",
      );
    }
    try {
      // The batch reads its own name for the input, so deleting the file later does not break it.
      await this.#files.store.link(input.id, inputCopyName(id));
    } catch (error) {
      await this.#store.releaseActive(tenant, id).catch(() => undefined);
      throw error;
    }
    const now = this.#clock();
    const seconds = Math.floor(now / 1000);
    const batch: StoredBatch = {
      id,
      object: "batch",
      endpoint: request.endpoint,
      errors: null,
      input_file_id: input.id,
      completion_window: request.completion_window,
      status: "validating",
      output_file_id: null,
      error_file_id: null,
      created_at: seconds,
      in_progress_at: null,
      expires_at: Math.floor((now + COMPLETION_WINDOW_MS) / 1000),
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      metadata: request.metadata ?? null,
      tenant,
    };
    try {
      await this.#store.create(batch, input.lines, now);
    } catch (error) {
      await this.#files.store.remove(inputCopyName(id)).catch(() => undefined);
      await this.#store.releaseActive(tenant, id).catch(() => undefined);
      throw error;
    }
    this.#logger.info({ batch_id: id, tenant, input_file_id: input.id, endpoint: request.endpoint }, "batch created");
    this.#runner.kick();
    await this.#acknowledge(`batch ${id}`);
    return this.#object(batch);
  }

  /** The tenant's batch with its live request counts. */
  async get(tenant: string, id: string): Promise<BatchObject> {
    return this.#object(await this.#find(tenant, id));
  }

  /** The tenant's batches, newest first; `limit` 1–100 (default 20), `after` pages on from a batch id. */
  async list(tenant: string, options: { limit?: number; after?: string } = {}): Promise<BatchPage> {
    if (options.after !== undefined) assertBatchId(options.after, "after");
    const { data, has_more } = await this.#store.listForTenant(tenant, options);
    const objects = await Promise.all(data.map((batch) => this.#object(batch)));
    return {
      object: "list",
      data: objects,
      has_more,
      first_id: objects[0]?.id ?? null,
      last_id: objects.at(-1)?.id ?? null,
    };
  }

  /**
   * Cancels the tenant's batch: it goes to `cancelling` at once; the runner then removes
   * its waiting lines, aborts the running ones, and finalizes it as `cancelled` with the
   * output of the lines that finished. Cancelling a cancelling or cancelled batch returns it.
   * @throws ConflictError (409) when the batch is already finalizing or final.
   */
  async cancel(tenant: string, id: string): Promise<BatchObject> {
    const batch = await this.#find(tenant, id);
    const cancelling = await this.#store.transition(id, ["validating", "in_progress"], {
      status: "cancelling",
      cancelling_at: Math.floor(this.#clock() / 1000),
    });
    if (cancelling) {
      this.#logger.info({ batch_id: id, tenant }, "batch cancelling");
      this.#runner.kick();
      return this.#object(cancelling);
    }
    const current = (await this.#store.get(id)) ?? batch;
    if (current.status === "cancelling" || current.status === "cancelled") return this.#object(current);
    throw new ConflictError(
      `Batch ${id} is ${current.status}; only validating or in-progress batches can be cancelled.`,
      "batch_not_cancellable",
    );
  }

  async #find(tenant: string, id: string): Promise<StoredBatch> {
    assertBatchId(id);
    const batch = await this.#store.get(id);
    if (!batch || batch.tenant !== tenant)
      throw new NotFoundError(`No batch with id ${id}.`, "batch_id", "batch_not_found");
    return batch;
  }

  async #object(batch: StoredBatch): Promise<BatchObject> {
    const { tenant: _tenant, ...object } = batch;
    return { ...object, request_counts: await this.#store.requestCounts(batch) };
  }
}
