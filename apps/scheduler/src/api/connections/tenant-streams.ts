import { TenantLimitError } from "@corral/shared";

export interface TenantStreamsOptions {
  /** Most open streams and long polls per tenant in this process. */
  max: number;
  /**
   * The `Retry-After` a refused caller gets, in seconds.
   * @defaultValue 1
   */
  retryAfterSeconds?: number;
}

/**
 * Counts each tenant's open SSE streams and `?wait=` long polls in this scheduler process
 * (per replica: a tenant may hold `max` on each), so one tenant cannot hold every
 * connection and job-event waiter of a scheduler. {@link acquire} takes a place or throws
 * a 429; the release it returns gives it back (once, however often it is called).
 */
export class TenantStreams {
  readonly max: number;
  readonly #retryAfterSeconds: number;
  readonly #open = new Map<string, number>();

  constructor(options: TenantStreamsOptions) {
    if (!Number.isInteger(options.max) || options.max < 1) throw new RangeError("max must be a positive integer");
    this.max = options.max;
    this.#retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }

  /**
   * A place for one stream or long poll of `tenant`; call the returned function when it ends.
   * @throws TenantLimitError (429 `too_many_streams`, with Retry-After) when the tenant holds `max` already.
   */
  acquire(tenant: string): () => void {
    const open = this.#open.get(tenant) ?? 0;
    if (open >= this.max) {
      throw new TenantLimitError(
        `Tenant ${tenant} already has ${this.max} open streams and long polls on this server ` +
          `(CORRAL_MAX_STREAMS_PER_TENANT). Close one, or retry later.`,
        "too_many_streams",
        this.#retryAfterSeconds,
      );
    }
    this.#open.set(tenant, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(tenant) ?? 1) - 1;
      if (left > 0) this.#open.set(tenant, left);
      else this.#open.delete(tenant);
    };
  }

  /** The tenant's open streams and long polls. */
  openOf(tenant: string): number {
    return this.#open.get(tenant) ?? 0;
  }
}
