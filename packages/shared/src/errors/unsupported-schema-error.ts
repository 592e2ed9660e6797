import { JobFailureError } from "./job-failure-error.js";

/** A `json_schema` response format the grammar generator cannot enforce. */
export class UnsupportedSchemaError extends JobFailureError {
  override readonly name = "UnsupportedSchemaError";
  /** JSON pointer of the offending part of the schema ("" for the root). */
  readonly pointer: string;

  constructor(pointer: string, reason: string, options: { cause?: unknown } = {}) {
    super(
      `response_format.json_schema.schema${pointer ? ` at ${pointer}` : ""}: ${reason}`,
      "unsupported_schema",
      options,
    );
    this.pointer = pointer;
  }
}
