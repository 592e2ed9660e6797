import { Router, type Request, type RequestHandler, type Response } from "express";
import {
  InvalidRequestError,
  UnschedulableError,
  type CatalogModel,
  type JobRecord,
  type RedisKeys,
  type ResponseFormat,
  type TokenLogprob,
} from "@corral/shared";
import { validateJsonSchemaForGrammar } from "@corral/shared";
import { principalOf } from "../../auth/authenticate.js";
import { jsonBody } from "../../http/json-body.js";
import type { JobService } from "../../jobs/job-service.js";
import type { JobInput } from "../../jobs/types.js";
import type { WorkerRegistry } from "../../workers/worker-registry.js";
import { corralHeaders, jobEarlyHints } from "./corral-headers.js";
import { JobCancelledError, JobFailedError, UnsupportedFeatureError } from "../../openai-format/errors.js";
import { chatJobInputs, completionJobInputs, embeddingJobInput } from "../../openai-format/job-inputs.js";
import { assertPlaceable } from "./placement.js";
import { RequestScope, type JobKind } from "./request-scope.js";
import {
  chatChunk,
  chatCompletion,
  completionId,
  embeddingList,
  sumUsage,
  textCompletion,
  usageChunk,
  type ChoiceOutput,
  type CompletionHead,
  type OpenAIUsage,
} from "../../openai-format/responses.js";
import { openAIToolCalls } from "../../openai-format/tools.js";
import { SseWriter } from "./sse-writer.js";
import { parseChatRequest, parseCompletionRequest, parseEmbeddingRequest } from "../../openai-format/schemas.js";
import type { StreamHub } from "./stream-hub.js";
import type { InteractiveLeases } from "../../jobs/interactive-leases.js";
import { streamResponse } from "./stream-response.js";
import { responsesHandler } from "./responses-route.js";
import { bindLog } from "../../http/request-context.js";
import type { TenantStreams } from "../connections/tenant-streams.js";

export interface OpenAIRouterOptions {
  jobs: JobService;
  workers: WorkerRegistry;
  /** Reads the streaming requests' token streams, all over one connection. */
  streams: StreamHub;
  keys: RedisKeys;
  bodyLimitBytes: number;
  /** Longest a request waits for its jobs (then 504, and the jobs are cancelled); 0 for no limit. */
  requestTimeoutMs: number;
  /** @defaultValue Date.now */
  clock?: () => number;
  /**
   * Leases on the jobs of open requests, so a slot cancels them when this scheduler dies.
   * @defaultValue none
   */
  leases?: InteractiveLeases;
  /** Token relay tuning (tests). */
  relay?: { blockMs?: number; settleMs?: number };
  /** Each tenant's open streams (with its long polls). @defaultValue no limit */
  tenantStreams?: TenantStreams;
}

/**
 * The OpenAI-compatible API, mounted at `/v1`: `POST /v1/chat/completions`, `POST /v1/completions`,
 * `POST /v1/embeddings` and `POST /v1/responses` (stateless, see responses-route.ts). Each choice
 * is a job in its model's lane (source `openai`, which outranks native jobs and batch lines);
 * replies and errors take OpenAI's shapes, and Corral's details travel in `x-corral-*` headers.
 * docs/api.md documents every field.
 */
export function openaiRouter(options: OpenAIRouterOptions): Router {
  const { jobs, workers, bodyLimitBytes } = options;
  const clock = options.clock ?? Date.now;
  const router = Router();
  const body = jsonBody(bodyLimitBytes);

  /** Checks common to every kind, then the request's scope (whose jobs are cancelled if the client leaves). */
  const prepare = async (
    res: Response,
    kind: JobKind,
    modelName: string,
    format: ResponseFormat | undefined,
  ): Promise<{ model: CatalogModel; scope: RequestScope }> => {
    const { tenant } = principalOf(res.locals);
    const model = jobs.resolveModel(modelName);
    checkResponseFormat(format);
    assertPlaceable(model, await workers.list());
    const scope = new RequestScope({
      res,
      jobs,
      tenant,
      kind,
      timeoutMs: options.requestTimeoutMs,
      clock,
      log: res.locals.log,
    });
    return { model, scope };
  };

  /**
   * Submits the jobs, takes their interactive leases (dropped when the response closes),
   * and sends the job ids at once as a `103 Early Hints` with `x-corral-job-id`: a client
   * whose scheduler dies before the first token still learns them.
   */
  const submit = async (res: Response, scope: RequestScope, inputs: JobInput[]): Promise<void> => {
    await scope.group.submit(inputs);
    const ids = scope.group.ids;
    bindLog(res, { job_ids: ids });
    if (options.leases) {
      try {
        await options.leases.hold(ids);
      } catch (error) {
        // Without a lease a slot would cancel them anyway; do it now.
        await scope.group.cancel("the interactive lease could not be taken");
        throw error;
      }
      res.once("close", () => options.leases!.release(ids));
    }
    if (ids.length > 0 && !res.headersSent && !res.req.socket.destroyed) {
      res.writeEarlyHints(jobEarlyHints(ids));
    }
  };

  /** Takes a stream's place for the tenant before its jobs are queued (a 429 leaves none); the place is given back when the response ends. */
  const holdStream = (res: Response): void => {
    const release = options.tenantStreams?.acquire(principalOf(res.locals).tenant);
    if (release) res.once("close", release);
  };

  const head = (kind: "chat" | "completion", model: CatalogModel): CompletionHead => ({
    id: completionId(kind),
    created: Math.floor(clock() / 1000),
    model: model.id,
  });

  router.post(
    "/chat/completions",
    body,
    noRetry(async (req: Request, res: Response) => {
      const request = parseChatRequest(req.body);
      if (request.stream) holdStream(res);
      const { model, scope } = await prepare(res, "chat", request.model, request.sampling.response_format);
      // With tool_choice auto a reply is a call or content, known only at its end: such streams are sent
      // when it is done. A forced call is streamed as it is generated.
      const relay = request.stream && (request.tools === null || request.tools.required);
      await submit(res, scope, chatJobInputs(request, model, relay));
      if (relay) {
        await streamResponse({
          ...streamDeps(options),
          res,
          scope,
          head: head("chat", model),
          kind: "chat",
          includeUsage: request.includeUsage,
          echo: null,
          tools: request.tools,
        });
        return;
      }
      const records = await scope.succeededRecords();
      if (!records) return;
      const logprobs = request.sampling.logprobs !== undefined;
      const choices = records.map((r) => {
        const output = {
          ...choice(r.result!.text, r.result!.finish_reason, logprobs, r.result!.logprobs),
          ...(r.result!.reasoning !== undefined ? { reasoning: r.result!.reasoning } : {}),
        };
        const calls = r.result!.tool_calls;
        return calls?.length
          ? { ...output, tool_calls: openAIToolCalls(calls), finish_reason: "tool_calls" as const }
          : output;
      });
      const usage = sumUsage(records.map((r) => r.result!.usage));
      if (request.stream) {
        await streamWhole(res, records, head("chat", model), choices, request.includeUsage ? usage : null);
        return;
      }
      res.set(corralHeaders(records, { timings: true })).json(chatCompletion(head("chat", model), choices, usage));
    }),
  );

  router.post(
    "/responses",
    body,
    noRetry(responsesHandler({ ...streamDeps(options), prepare, submit, holdStream, clock })),
  );

  router.post(
    "/completions",
    body,
    noRetry(async (req: Request, res: Response) => {
      const request = parseCompletionRequest(req.body);
      if (request.stream) holdStream(res);
      const { model, scope } = await prepare(res, "completion", request.model, request.sampling.response_format);
      await submit(res, scope, completionJobInputs(request, model, request.stream));
      // Choice i belongs to prompt floor(i / n).
      const promptOf = (i: number): string => request.prompts[Math.floor(i / request.n)] ?? "";
      if (request.stream) {
        await streamResponse({
          ...streamDeps(options),
          res,
          scope,
          head: head("completion", model),
          kind: "completion",
          includeUsage: request.includeUsage,
          echo: request.echo ? scope.group.ids.map((_, i) => promptOf(i)) : null,
        });
        return;
      }
      const records = await scope.succeededRecords();
      if (!records) return;
      // With best_of, prompt p's candidates are jobs p × best_of … and its n best become its choices.
      const chosen = request.bestOf > request.n ? bestOf(records, request.bestOf, request.n) : records;
      const choices = chosen.map((r, i) =>
        choice(
          (request.echo ? promptOf(i) : "") + r.result!.text,
          r.result!.finish_reason,
          request.logprobs,
          r.result!.logprobs,
        ),
      );
      // Every candidate was generated, so all of them count (as OpenAI bills best_of).
      const usage = sumUsage(records.map((r) => r.result!.usage));
      res
        .set(corralHeaders(records, { timings: true }))
        .json(textCompletion(head("completion", model), choices, usage));
    }),
  );

  router.post(
    "/embeddings",
    body,
    noRetry(async (req: Request, res: Response) => {
      const request = parseEmbeddingRequest(req.body);
      const { model, scope } = await prepare(res, "embedding", request.model, undefined);
      if (request.dimensions !== undefined && request.dimensions !== model.embedding_length) {
        throw new UnsupportedFeatureError(
          `Model ${model.id} returns ${model.embedding_length ?? "model-sized"}-dimensional embeddings; other \`dimensions\` are not supported.`,
          "dimensions",
          "unsupported_value",
        );
      }
      await submit(res, scope, [embeddingJobInput(request, model)]);
      const records = await scope.succeededRecords();
      if (!records) return;
      const record = records[0]!;
      const vectors = record.result!.embeddings;
      if (!vectors || vectors.length !== request.inputs.length) {
        throw new JobFailedError(
          record.id,
          `the worker returned ${vectors?.length ?? 0} embeddings for ${request.inputs.length} inputs`,
          "embeddings_missing",
        );
      }
      res
        .set(corralHeaders(records, { timings: true }))
        .json(embeddingList(model.id, vectors, request.encoding, record.result!.usage.prompt_tokens));
    }),
  );

  return router;
}

/**
 * Tells OpenAI's clients (`x-should-retry: false`) not to retry errors a retry cannot fix:
 * a job cancelled on purpose (409, which they would otherwise retry, queueing the work
 * again) and a model no worker can fit (503).
 */
function noRetry(handler: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return async (req, res) => {
    try {
      await handler(req, res);
    } catch (error) {
      if ((error instanceof JobCancelledError || error instanceof UnschedulableError) && !res.headersSent) {
        res.setHeader("x-should-retry", "false");
      }
      throw error;
    }
  };
}

/**
 * A chat stream whose choices are already complete (requests with tools): per choice the
 * role chunk, its thoughts (`reasoning_content`, reasoning models), its content or its
 * `tool_calls` delta (each call whole, with its `index`),
 * and its finish chunk; then the usage chunk when asked, and `[DONE]`.
 */
async function streamWhole(
  res: Response,
  records: readonly JobRecord[],
  head: CompletionHead,
  choices: readonly ChoiceOutput[],
  usage: OpenAIUsage | null,
): Promise<void> {
  const sse = new SseWriter(res);
  sse.open(corralHeaders([...records]));
  const includeUsage = usage !== null;
  for (const [index, output] of choices.entries()) {
    await sse.send(chatChunk(head, index, { role: "assistant", content: "" }, null, includeUsage));
    if (output.reasoning) {
      await sse.send(chatChunk(head, index, { reasoning_content: output.reasoning }, null, includeUsage));
    }
    if (output.tool_calls) {
      const calls = output.tool_calls.map((call, i) => ({ index: i, ...call }));
      await sse.send(chatChunk(head, index, { tool_calls: calls }, null, includeUsage));
    } else if (output.text !== "") {
      await sse.send(chatChunk(head, index, { content: output.text }, null, includeUsage, output.logprobs ?? null));
    }
    await sse.send(chatChunk(head, index, {}, output.finish_reason, includeUsage));
  }
  if (usage !== null) await sse.send(usageChunk(head, "chat", usage));
  await sse.done();
}

const streamDeps = (options: OpenAIRouterOptions) => ({
  streams: options.streams,
  keys: options.keys,
  records: options.jobs.records,
  ...(options.relay ? { relay: options.relay } : {}),
});

/**
 * A finished job's choice; "cancelled" never reaches here (such jobs are errors). With
 * `withLogprobs`, its tokens' logprobs (none recorded: an empty list).
 */
const choice = (
  text: string,
  finishReason: "stop" | "length" | "cancelled",
  withLogprobs = false,
  logprobs: readonly TokenLogprob[] = [],
): ChoiceOutput => ({
  text,
  finish_reason: finishReason === "length" ? "length" : "stop",
  ...(withLogprobs ? { logprobs } : {}),
});

/**
 * `best_of`: of each prompt's `bestOf` candidates (consecutive records), the `n` with the
 * highest mean token logprob, best first. A candidate with no tokens ranks last.
 */
export function bestOf(records: readonly JobRecord[], bestOf: number, n: number): JobRecord[] {
  const chosen: JobRecord[] = [];
  for (let start = 0; start < records.length; start += bestOf) {
    const ranked = records
      .slice(start, start + bestOf)
      .map((record) => ({ record, score: meanLogprob(record.result?.logprobs ?? []) }))
      .sort((a, b) => b.score - a.score);
    chosen.push(...ranked.slice(0, n).map((r) => r.record));
  }
  return chosen;
}

const meanLogprob = (tokens: readonly TokenLogprob[]): number =>
  tokens.length === 0 ? -Infinity : tokens.reduce((sum, t) => sum + t.logprob, 0) / tokens.length;

/**
 * Rejects a `json_schema` the grammar cannot enforce before anything is queued (the
 * worker's engine runs the same check, so a request that passes here is not failed for it there).
 */
function checkResponseFormat(format: ResponseFormat | undefined): void {
  if (format?.type !== "json_schema") return;
  const problem = validateJsonSchemaForGrammar(format.json_schema.schema);
  if (problem !== null)
    throw new InvalidRequestError(problem, "response_format.json_schema.schema", "unsupported_schema");
}
