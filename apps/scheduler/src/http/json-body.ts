import express, { type Request, type RequestHandler } from "express";
import { InvalidRequestError, MAX_JSON_DEPTH, PayloadTooLargeError, exceedsJsonDepth } from "@corral/shared";
import { UnsupportedMediaTypeError } from "./errors.js";

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/**
 * Parses a JSON request body into `req.body`, with clear 4xx errors: a body over `limit`
 * is a 413, a missing or non-JSON Content-Type a 415, an empty body or bad JSON a 400.
 * Validation of the parsed value is the route's job (zod). One middleware: the type check,
 * the read and the parse.
 */
export function jsonBody(limitBytes: number): RequestHandler {
  const raw = express.raw({ type: () => true, limit: limitBytes, inflate: true });
  const parse = (req: Request): Error | undefined => {
    const buffer: unknown = req.body;
    if (!Buffer.isBuffer(buffer) || buffer.length === 0) {
      return new InvalidRequestError("The request body is empty: send a JSON object.", null, "empty_body");
    }
    try {
      req.body = JSON.parse(buffer.toString("utf8")) as unknown;
      // Deeper values would overflow the stack of whatever recurses over them later.
      if (exceedsJsonDepth(req.body, MAX_JSON_DEPTH)) {
        return new InvalidRequestError(
          `The request body nests deeper than ${MAX_JSON_DEPTH} levels.`,
          null,
          "nesting_too_deep",
        );
      }
      return undefined;
    } catch (error) {
      return new InvalidRequestError(
        `The request body is not valid JSON: ${(error as Error).message}.`,
        null,
        "invalid_json",
      );
    }
  };
  return (req, res, next) => {
    const contentType = req.headers["content-type"]?.split(";")[0]?.trim() ?? "";
    if (!JSON_TYPE.test(contentType)) {
      next(
        new UnsupportedMediaTypeError(
          contentType
            ? `Unsupported Content-Type \`${contentType}\`: send the body as JSON with \`Content-Type: application/json\`.`
            : "Missing Content-Type: send the body as JSON with `Content-Type: application/json`.",
        ),
      );
      return;
    }
    raw(req, res, (error?: unknown) => {
      if (error !== undefined && error !== null) next(translate(error as BodyParserError, limitBytes));
      else next(parse(req));
    });
  };
}

function translate(error: BodyParserError, limitBytes: number): Error {
  switch (error.type) {
    case "entity.too.large":
      return new PayloadTooLargeError(`The request body is larger than the limit of ${limitBytes} bytes.`);
    case "encoding.unsupported":
      return new UnsupportedMediaTypeError(`Unsupported Content-Encoding: ${error.message}.`);
    case "request.aborted":
    case "request.size.invalid":
      return new InvalidRequestError("The request body was cut short.", null, "incomplete_body");
    default:
      if (error.status !== undefined && error.status >= 400 && error.status < 500) {
        return new InvalidRequestError(`Could not read the request body: ${error.message}.`, null, "invalid_body");
      }
      return error;
  }
}
