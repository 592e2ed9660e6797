import type { Logger } from "pino";
import type { Principal } from "../auth/principal.js";

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    /** What the scheduler's middleware puts on `res.locals` for the handlers after it. */
    interface Locals {
      /** From `x-request-id`, or generated; echoed in the response header. */
      requestId: string;
      /** Logger bound to the request id (and the tenant, once authenticated): add fields with `bindLog`. */
      log: Logger;
      /** Set by the auth middleware. */
      principal?: Principal;
    }
  }
}

export {};
