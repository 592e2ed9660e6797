import type { z } from "zod";
import { InvalidRequestError } from "@corral/shared";

/** Dotted path of an issue: `messages.0.role`; null for the body itself. */
export function issueParam(issue: z.core.$ZodIssue): string | null {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys" && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  return path.length ? path.join(".") : null;
}

/**
 * Turns a zod error into a 400 naming the first bad field, e.g.
 * `Invalid value for \`max_tokens\`: Too small: expected number to be >=1` with param `max_tokens`.
 * `prefix` is prepended to the param (`query` fields are named as they are).
 */
export function invalidRequestFromZod(error: z.ZodError, prefix = ""): InvalidRequestError {
  const issue = error.issues[0];
  if (!issue) return new InvalidRequestError("Invalid request.");
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
  return new InvalidRequestError(
    message,
    full,
    issue.code === "unrecognized_keys" ? "unknown_parameter" : "invalid_value",
  );
}
