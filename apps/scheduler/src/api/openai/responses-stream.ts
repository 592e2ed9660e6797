import type { Response } from "express";
import {
  CorralError,
  type JobRecord,
  type JobRecords,
  type RedisKeys,
  type TokenLogprob,
  type TokenStreamEnd,
} from "@corral/shared";
import { asRedisUnavailable } from "../../http/error-handler.js";
import { internalErrorBody } from "../../http/errors.js";
import { corralHeaders } from "./corral-headers.js";
import { JobFailedError } from "../../openai-format/errors.js";
import { jobOutcomeError } from "../../openai-format/job-outcome.js";
import type { ResponseSettings } from "../../openai-format/responses-request.js";
import {
  messageItem,
  outputText,
  responseObject,
  responsesId,
  type FunctionCallItem,
  type MessageItem,
  type OutputItem,
  type ResponseHead,
  type ResponseObject,
} from "../../openai-format/responses-object.js";
import { chatLogprobs } from "../../openai-format/responses.js";
import type { RequestScope } from "./request-scope.js";
import { SseWriter } from "./sse-writer.js";
import type { StreamHub } from "./stream-hub.js";
import { TokenRelay } from "./token-relay.js";

/**
 * The Responses API's server-sent events: each is `event: <type>` and `data: {type,
 * sequence_number, …}`, numbered from 0; the stream ends after `response.completed`
 * (or `response.incomplete`, or `response.failed`) with no `[DONE]`.
 */
export class ResponseEvents {
  readonly #sse: SseWriter;
  #sequence = 0;

  constructor(sse: SseWriter) {
    this.#sse = sse;
  }

  send(type: string, fields: Record<string, unknown>): Promise<void> {
    return this.#sse.send({ type, sequence_number: this.#sequence++, ...fields }, type);
  }

  /** `response.created` and `response.in_progress`, with the response as it starts. */
  async start(response: ResponseObject): Promise<void> {
    await this.send("response.created", { response });
    await this.send("response.in_progress", { response });
  }

  /** A message item is added (in progress, its text part empty). */
  async openMessage(index: number, id: string): Promise<void> {
    await this.send("response.output_item.added", { output_index: index, item: messageItem(id, "in_progress", []) });
    await this.send("response.content_part.added", {
      item_id: id,
      output_index: index,
      content_index: 0,
      part: outputText("", null),
    });
  }

  textDelta(index: number, id: string, delta: string, logprobs: readonly TokenLogprob[] | null): Promise<void> {
    return this.send("response.output_text.delta", {
      item_id: id,
      output_index: index,
      content_index: 0,
      delta,
      logprobs: logprobs ? chatLogprobs(logprobs).content : [],
    });
  }

  /** The message's text is done: `output_text.done`, `content_part.done` and `output_item.done`. */
  async closeMessage(index: number, item: MessageItem): Promise<void> {
    const part = item.content[0]!;
    const at = { item_id: item.id, output_index: index, content_index: 0 };
    await this.send("response.output_text.done", { ...at, text: part.text, logprobs: part.logprobs });
    await this.send("response.content_part.done", { ...at, part });
    await this.send("response.output_item.done", { output_index: index, item });
  }

  /** A whole function call: added with empty arguments, its arguments, then done. */
  async functionCall(index: number, item: FunctionCallItem): Promise<void> {
    const at = { item_id: item.id, output_index: index };
    await this.send("response.output_item.added", {
      output_index: index,
      item: { ...item, status: "in_progress", arguments: "" },
    });
    await this.send("response.function_call_arguments.delta", { ...at, delta: item.arguments });
    await this.send("response.function_call_arguments.done", { ...at, name: item.name, arguments: item.arguments });
    await this.send("response.output_item.done", { output_index: index, item });
  }

  /** A finished item, message or call, all of its events at once. */
  async item(index: number, item: OutputItem): Promise<void> {
    if (item.type === "function_call") return this.functionCall(index, item);
    await this.openMessage(index, item.id);
    const part = item.content[0]!;
    if (part.text !== "")
      await this.send("response.output_text.delta", {
        item_id: item.id,
        output_index: index,
        content_index: 0,
        delta: part.text,
        logprobs: part.logprobs,
      });
    await this.closeMessage(index, item);
  }

  /** `response.completed` or `response.incomplete`, by the response's status. */
  finish(response: ResponseObject): Promise<void> {
    const type = response.status === "incomplete" ? "response.incomplete" : "response.completed";
    return this.send(type, { response });
  }

  /** An `error` event, then `response.failed` carrying the same error. */
  async fail(response: ResponseObject, error: { code: string; message: string; param: string | null }): Promise<void> {
    await this.send("error", { code: error.code, message: error.message, param: error.param });
    await this.send("response.failed", { response });
  }
}

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
  streams: StreamHub;
  keys: RedisKeys;
  records: JobRecords;
  relay?: { blockMs?: number; settleMs?: number };
}

/**
 * Answers a streaming `/v1/responses` request (one job, no tools) with its text relayed
 * token by token as `response.output_text.delta` events. As on chat streams, nothing is
 * sent before the job's first token (or end): a job that fails before that gets a plain
 * HTTP error. After that, a failure is an `error` event and `response.failed`.
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
  const messageId = responsesId("msg");
  let text = "";
  const tokens: TokenLogprob[] = [];
  const state = (status: "in_progress" | "failed"): ResponseObject =>
    responseObject(head, settings, {
      status,
      output: sse.opened
        ? [messageItem(messageId, "incomplete", [outputText(text, options.logprobs ? tokens : null)])]
        : [],
      usage: null,
    });

  const open = async (): Promise<void> => {
    const record = await options.records.get(id);
    sse.open(corralHeaders(record ? [record] : []));
    await events.start(responseObject(head, settings, { status: "in_progress", output: [], usage: null }));
    await events.openMessage(0, messageId);
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
      if (event.type === "text") {
        text += event.text;
        if (event.logprobs) tokens.push(...event.logprobs);
        await events.textDelta(0, messageId, event.text, options.logprobs ? (event.logprobs ?? []) : null);
      }
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
  const item = messageItem(messageId, status, [outputText(text, options.logprobs ? tokens : null)]);
  await events.closeMessage(0, item);
  await events.finish(responseObject(head, settings, { status, output: [item], usage: end.usage }));
  sse.end();
}
