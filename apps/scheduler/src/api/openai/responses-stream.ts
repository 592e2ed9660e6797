import type { Response } from "express";
import {
  CorralError,
  type JobRecord,
  type JobRecords,
  type JobTools,
  type RedisKeys,
  type TokenStreamEnd,
} from "@corral/shared";
import { asRedisUnavailable } from "../../http/error-handler.js";
import { internalErrorBody } from "../../http/errors.js";
import { corralHeaders } from "./corral-headers.js";
import { JobFailedError } from "../../openai-format/errors.js";
import { jobOutcomeError } from "../../openai-format/job-outcome.js";
import type { ResponseSettings } from "../../openai-format/responses-request.js";
import { responseObject, type ResponseHead, type ResponseObject } from "../../openai-format/responses-object.js";
import {
  FunctionCallStream,
  MessageStream,
  ReasoningStream,
  ResponseEvents,
  type OutputStream,
} from "./response-events.js";
import type { RequestScope } from "./request-scope.js";
import { SseWriter } from "./sse-writer.js";
import type { StreamHub } from "./stream-hub.js";
import { TokenRelay } from "./token-relay.js";

/** A response already complete (requests with tools), sent as the events that build it. */
export async function streamWholeResponse(
  res: Response,
  records: readonly JobRecord[],
  response: ResponseObject,
): Promise<void> {
  const sse = new SseWriter(res);
  sse.open(corralHeaders([...records]));
  const events = new ResponseEvents(sse);
  await events.start({ ...response, status: "in_progress", output: [], usage: null, incomplete_details: null });
  for (const [index, item] of response.output.entries()) await events.item(index, item);
  await events.finish(response);
  sse.end();
}

export interface StreamResponsesOptions {
  res: Response;
  scope: RequestScope;
  head: ResponseHead;
  settings: ResponseSettings;
  /** `include` asked for logprobs. */
  logprobs: boolean;
  /** The request's tools: a forced call streams as it is generated. */
  tools: JobTools | null;
  streams: StreamHub;
  keys: RedisKeys;
  records: JobRecords;
  relay?: { blockMs?: number; settleMs?: number };
}

/**
 * Answers a streaming `/v1/responses` request (one job; no tools, or a forced call) with
 * its text relayed token by token as `response.output_text.delta` events, or its calls'
 * arguments as `response.function_call_arguments.delta` events. As on chat streams, nothing is
 * sent before the job's first token (or end): a job that fails before that gets a plain
 * HTTP error. After that, a failure is an `error` event and `response.failed`. A
 * reasoning model's thoughts come first, as a reasoning item whose text is relayed as
 * `response.reasoning_text.delta` events; the message or calls follow it.
 */
export async function streamResponses(options: StreamResponsesOptions): Promise<void> {
  const { res, scope, head, settings } = options;
  const id = scope.group.ids[0]!;
  const sse = new SseWriter(res);
  const events = new ResponseEvents(sse);
  const relay = new TokenRelay({
    reader: options.streams.reader(),
    keys: options.keys,
    ids: [id],
    readRecord: (jobId) => options.records.get(jobId),
    logger: scope.log,
    clock: scope.clock,
    ...options.relay,
  });
  const reasoning = new ReasoningStream(events);
  // Made when the answer begins, after the reasoning item if any: a forced call streams as
  // function_call items; any other output as one message.
  let output: OutputStream | null = null;
  const answer = async (): Promise<OutputStream> => {
    if (output) return output;
    await reasoning.close("completed");
    output = options.tools?.required
      ? new FunctionCallStream(events, reasoning.count)
      : new MessageStream(events, options.logprobs, reasoning.count);
    return output;
  };
  const state = (status: "in_progress" | "failed"): ResponseObject =>
    responseObject(head, settings, {
      status,
      output: [...reasoning.items(), ...(output?.partial() ?? [])],
      usage: null,
    });

  const open = async (): Promise<void> => {
    const record = await options.records.get(id);
    sse.open(corralHeaders(record ? [record] : []));
    await events.start(responseObject(head, settings, { status: "in_progress", output: [], usage: null }));
  };

  let failure: CorralError | null = null;
  let end: TokenStreamEnd | null = null;
  try {
    for await (const event of relay.events(scope.deadline, scope.gone)) {
      if (event.type === "timeout") {
        failure = await scope.timedOut();
        break;
      }
      if (event.type === "diverged") {
        await scope.group.cancel("a rerun's text does not continue what was streamed");
        failure = new JobFailedError(
          id,
          "its worker was lost mid-stream and the rerun's text differs from what this stream had already sent; send the request again",
          "stream_interrupted",
        );
        break;
      }
      if (event.type === "end") {
        scope.group.settled(id);
        if (event.end.status !== "succeeded" || event.end.finish_reason === "cancelled") {
          const record = await options.records.get(id);
          failure = record
            ? jobOutcomeError(record, "chat")
            : new JobFailedError(id, "its record is gone", "job_missing");
          break;
        }
        end = event.end;
      }
      if (!sse.opened) await open();
      if (event.type === "reasoning") await reasoning.text(event.text);
      if (event.type === "text") await (await answer()).text(event.text, event.logprobs ?? null);
    }
  } catch (thrown) {
    if (scope.gone.aborted) return;
    const error = asRedisUnavailable(thrown);
    await scope.group.cancel("relaying the token stream failed");
    if (!(error instanceof CorralError)) {
      scope.log.error({ err: error }, "relaying the token stream failed");
      if (!sse.opened) throw error;
      const { message } = internalErrorBody(res.locals.requestId ?? "unknown").error;
      const body = { code: "internal_error", message, param: null };
      await events.fail({ ...state("failed"), error: body }, body);
      sse.end();
      return;
    }
    failure = error;
  } finally {
    relay.close();
  }
  if (failure) {
    if (!sse.opened) throw failure;
    await events.fail({ ...state("failed"), error: { code: failure.code, message: failure.message } }, failure);
    sse.end();
    return;
  }
  if (scope.gone.aborted || end === null) {
    await scope.group.cancel("the client disconnected");
    return;
  }
  const status = end.finish_reason === "length" ? "incomplete" : "completed";
  // Cut by max_output_tokens mid-thought: the reasoning item alone, incomplete, as on OpenAI.
  const cutInThought = output === null && reasoning.count > 0 && status === "incomplete";
  if (cutInThought) await reasoning.close("incomplete");
  const items = cutInThought ? [] : await (await answer()).finish(status);
  await events.finish(
    responseObject(head, settings, { status, output: [...reasoning.items(), ...items], usage: end.usage }),
  );
  sse.end();
}
