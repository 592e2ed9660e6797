import type { z } from "zod";
import { InvalidRequestError } from "./corral-error.js";

/** Dotted path of an issue: `messages.0.role`; null for the value itself. */
export function issueParam(issue: z.core.$ZodIssue): string | null {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys" && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  return path.length ? path.join(".") : null;
}

/**
 * Input that fails its schema, naming the first bad field: what a service throws for
 * options or a body it validates itself. It is an {@link InvalidRequestError}, so the
 * HTTP layer answers it as any other 400, e.g.
 * `Invalid value for \`max_tokens\`: Too small: expected number to be >=1` with param `max_tokens`.
 */
export class ValidationError extends InvalidRequestError {
  override readonly name = "ValidationError";
  /** Dotted path of the first bad field (the `param`); null for the value itself. */
  readonly field: string | null;

  private constructor(message: string, field: string | null, code: string) {
    super(message, field, code);
    this.field = field;
  }

  /**
   * The error for a failed zod parse. `prefix` is prepended to the field path (`query`
   * fields are named as they are).
   */
  static fromZod(error: z.ZodError, prefix = ""): ValidationError {
    const issue = error.issues[0];
    if (!issue) return new ValidationError("Invalid request.", null, "invalid_value");
    const param = issueParam(issue);
    const full = param === null ? prefix || null : `${prefix}${param}`;
    let message: string;
    if (issue.code === "unrecognized_keys") {
      message = `Unrecognized field${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.map((k) => `\`${prefix}${[...issue.path.map(String), k].join(".")}\``).join(", ")}.`;
    } else if (full === null) {
      message = `Invalid request body: ${issue.message}.`;
    } else {
      message = `Invalid value for \`${full}\`: ${issue.message}.`;
    }
    return new ValidationError(
      message,
      full,
      issue.code === "unrecognized_keys" ? "unknown_parameter" : "invalid_value",
    );
  }
}
