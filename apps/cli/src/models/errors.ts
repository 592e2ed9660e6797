/** Why a pull failed; the command turns each into a message and a fix. */
export type PullErrorCode =
  | "bad_ref"
  | "not_found"
  | "unauthorized"
  | "ambiguous"
  | "checksum"
  | "disk_full"
  | "not_gguf"
  | "exists"
  | "interrupted"
  | "http";

/** A pull that stopped. `hint` says what to do about it; no secret is ever in either text. */
export class PullError extends Error {
  override readonly name = "PullError";
  readonly code: PullErrorCode;
  readonly hint: string | undefined;
  constructor(code: PullErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}
