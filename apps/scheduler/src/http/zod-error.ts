import type { z } from "zod";
import { ValidationError, type InvalidRequestError } from "@corral/shared";

export { issueParam } from "@corral/shared";

/**
 * Turns a zod error into a 400 naming the first bad field (a {@link ValidationError}).
 * `prefix` is prepended to the param (`query` fields are named as they are).
 */
export function invalidRequestFromZod(error: z.ZodError, prefix = ""): InvalidRequestError {
  return ValidationError.fromZod(error, prefix);
}
