import { InvalidRequestError, NotFoundError } from "@corral/shared";
import type { ErrorBody } from "../openai-format/error-body.js";

export { errorBody, type ErrorBody } from "../openai-format/error-body.js";

/** A request body whose Content-Type is not JSON. */
export class UnsupportedMediaTypeError extends InvalidRequestError {
  override readonly status = 415;
  constructor(message: string) {
    super(message, null, "unsupported_media_type");
  }
}

/** No route matches the method and path. */
export class RouteNotFoundError extends NotFoundError {
  constructor(method: string, path: string) {
    super(`No route for ${method} ${path}.`, null, "route_not_found");
  }
}

/** The body of an unexpected error: a generic message, never the error's own text or stack. */
export const internalErrorBody = (requestId: string): ErrorBody => ({
  error: {
    message: `The server had an error while processing your request (request id ${requestId}).`,
    type: "server_error",
    param: null,
    code: "internal_error",
  },
});
