/**
 * Typed errors of the API. Code branches on the class or `code`, never on the message. The
 * HTTP layer maps each to one JSON shape through `status`, `type` and `param`. Errors that
 * fail a job on its worker are {@link JobFailureError}s instead: they carry a job error
 * code and no HTTP.
 */
export class CorralError extends Error {
  override readonly name: string = "CorralError";
  /** HTTP status the API answers with. */
  readonly status: number = 500;
  /** OpenAI error `type`. */
  readonly type: string = "server_error";
  readonly code: string;
  readonly param: string | null;
  /** Seconds after which the request may succeed (the `Retry-After` header), when known. */
  readonly retryAfterSeconds: number | null = null;

  constructor(message: string, options: { code?: string; param?: string | null; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code ?? "internal_error";
    this.param = options.param ?? null;
  }
}

export class InvalidRequestError extends CorralError {
  override readonly name: string = "InvalidRequestError";
  override readonly status: number = 400;
  override readonly type = "invalid_request_error";
  constructor(message: string, param: string | null = null, code = "invalid_value") {
    super(message, { code, param });
  }
}

export class PayloadTooLargeError extends InvalidRequestError {
  override readonly status = 413;
  constructor(message: string) {
    super(message, null, "payload_too_large");
  }
}

export class AuthenticationError extends CorralError {
  override readonly name = "AuthenticationError";
  override readonly status = 401;
  override readonly type = "invalid_request_error";
  constructor(message = "Missing or invalid API key. Send `Authorization: Bearer <key>`.") {
    super(message, { code: "invalid_api_key" });
  }
}

export class PermissionDeniedError extends CorralError {
  override readonly name = "PermissionDeniedError";
  override readonly status = 403;
  override readonly type = "invalid_request_error";
  constructor(message = "This route needs the admin key.") {
    super(message, { code: "permission_denied" });
  }
}

export class NotFoundError extends CorralError {
  override readonly name: string = "NotFoundError";
  override readonly status = 404;
  override readonly type = "invalid_request_error";
  constructor(message: string, param: string | null = null, code = "not_found") {
    super(message, { code, param });
  }
}

export class ModelNotFoundError extends NotFoundError {
  override readonly name = "ModelNotFoundError";
  readonly model: string;
  readonly available: readonly string[];
  constructor(model: string, available: readonly string[]) {
    super(
      `The model \`${model}\` does not exist. Available models: ${available.length ? available.join(", ") : "(none: add .gguf files to the models directory)"}.`,
      "model",
      "model_not_found",
    );
    this.model = model;
    this.available = available;
  }
}

export class ConflictError extends CorralError {
  override readonly name = "ConflictError";
  override readonly status = 409;
  override readonly type = "invalid_request_error";
  constructor(message: string, code = "conflict") {
    super(message, { code });
  }
}

export class QueueFullError extends CorralError {
  override readonly name = "QueueFullError";
  override readonly status = 429;
  override readonly type = "rate_limit_error";
  constructor(message: string) {
    super(message, { code: "queue_full" });
  }
}

/**
 * 429: the tenant holds as many of something as it may (unfinished batches, open
 * streams); `code` names which. `retryAfterSeconds` sets `Retry-After` when given.
 */
export class TenantLimitError extends CorralError {
  override readonly name = "TenantLimitError";
  override readonly status = 429;
  override readonly type = "rate_limit_error";
  override readonly retryAfterSeconds: number | null;
  constructor(message: string, code: string, retryAfterSeconds: number | null = null) {
    super(message, { code });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** 429: the tenant has used its tokens for the day (OpenAI's `insufficient_quota`). */
export class TokenBudgetExceededError extends CorralError {
  override readonly name = "TokenBudgetExceededError";
  override readonly status = 429;
  override readonly type = "insufficient_quota";
  override readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message, { code: "token_budget_exceeded" });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class UnschedulableError extends CorralError {
  override readonly name = "UnschedulableError";
  override readonly status = 503;
  override readonly type = "server_error";
  constructor(message: string) {
    super(message, { code: "unschedulable" });
  }
}

export class ServiceUnavailableError extends CorralError {
  override readonly name = "ServiceUnavailableError";
  override readonly status = 503;
  override readonly type = "server_error";
  constructor(message: string) {
    super(message, { code: "service_unavailable" });
  }
}

/**
 * 503: Redis did not answer in time or the connection is down (an outage, a failover). The
 * request did nothing the client can count on: a submit may or may not have been queued
 * (check `GET /v1/jobs` before sending it again), reads can simply be retried.
 */
export class RedisUnavailableError extends CorralError {
  override readonly name = "RedisUnavailableError";
  override readonly status = 503;
  override readonly type = "server_error";
  override readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number, cause?: unknown) {
    super("Corral's Redis is unreachable or did not answer in time; retry the request shortly.", {
      code: "redis_unavailable",
      cause,
    });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class RequestTimeoutError extends CorralError {
  override readonly name = "RequestTimeoutError";
  override readonly status = 504;
  override readonly type = "timeout_error";
  constructor(message: string) {
    super(message, { code: "timeout" });
  }
}

/** A configuration variable with a bad value. Raised at start, before anything runs. */
export class ConfigError extends CorralError {
  override readonly name = "ConfigError";
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`, { code: "invalid_config", param: variable });
    this.variable = variable;
  }
}

/** Storing a file would put its tenant over its file byte quota (CORRAL_TENANT_FILE_BYTES). */
export class FileQuotaError extends InvalidRequestError {
  override readonly status = 413;
  readonly limit: number;
  constructor(tenant: string, usedBytes: number, limit: number) {
    super(
      `Tenant ${tenant} stores ${usedBytes} bytes of files; this file would pass its limit of ${limit} bytes (CORRAL_TENANT_FILE_BYTES). Delete files it no longer needs (DELETE /v1/files/{id}).`,
      "file",
      "file_quota_exceeded",
    );
    this.limit = limit;
  }
}
