import type { Response } from "express";
import { newToolCallId } from "@corral/llama";
import {
  CorralError,
  type JobRecord,
  type JobRecords,
  type JobTools,
  type RedisKeys,
  type TokenLogprob,
  type Usage,
} from "@corral/shared";
import { asRedisUnavailable } from "../../http/error-handler.js";
import { errorBody, internalErrorBody } from "../../http/errors.js";
import { corralHeaders } from "./corral-headers.js";
import { JobFailedError } from "../../openai-format/errors.js";
import { jobOutcomeError } from "../../openai-format/job-outcome.js";
import type { RequestScope } from "./request-scope.js";
import {
  chatChunk,
  sumUsage,
  textChunk,
  usageChunk,
  type CompletionHead,
  type OpenAIFinishReason,
  type ToolCallDelta,
} from "../../openai-format/responses.js";
import { ToolCallStreamParser } from "../../openai-format/tool-call-stream.js";
import { SseWriter } from "./sse-writer.js";
import type { StreamHub } from "./stream-hub.js";
import { TokenRelay } from "./token-relay.js";

export interface StreamResponseOptions {
  res: Response;
  scope: RequestScope;
  head: CompletionHead;
  kind: "chat" | "completion";
  includeUsage: boolean;
  /** Completions with `echo`: each choice's prompt, sent as its first text. */
  echo: readonly string[] | null;
  /** Chat whose tools force a call: the calls stream as `delta.tool_calls` as they are generated. */
  tools?: JobTools | null;
  /** The scheduler's shared reader of token streams. */
  streams: StreamHub;
  keys: RedisKeys;
  records: JobRecords;
  relay?: { blockMs?: number; settleMs?: number };
}

/**
 * Answers a `stream: true` request with server-sent events relayed from the jobs' token
 * streams. Nothing is sent until the first job produced its first token (or ended): a
 * job that fails before that (a bad schema, a prompt too long, the time limit) still
 * gets a plain HTTP error with its status. After that, errors become one
 * `data: {"error": …}` event (which OpenAI's clients raise) and the stream ends without
 * `[DONE]`. Choices of n > 1 interleave as their tokens come, each chunk naming its index.
 * A reasoning model's thoughts stream as `delta.reasoning_content` chunks, before (or
 * between) the answer's `delta.content` chunks, as they were generated.
 */
export async function streamResponse(options: StreamResponseOptions): Promise<void> {
  const { res, scope, head, kind, includeUsage, echo } = options;
  const ids = scope.group.ids;
  const sse = new SseWriter(res);
  const usages: Usage[] = [];
  const relay = new TokenRelay({
    reader: options.streams.reader(),
    keys: options.keys,
    ids,
    readRecord: (id) => options.records.get(id),
    logger: scope.log,
    clock: scope.clock,
    ...options.relay,
  });

  const open = async (): Promise<void> => {
    const records = await Promise.all(ids.map((id) => options.records.get(id)));
    sse.open(corralHeaders(records.filter((r): r is JobRecord => r !== null)));
    for (let index = 0; index < ids.length; index++) {
      if (kind === "chat")
        await sse.send(chatChunk(head, index, { role: "assistant", content: "" }, null, includeUsage));
      else if (echo?.[index]) await sse.send(textChunk(head, index, echo[index] ?? "", null, includeUsage));
    }
  };

  // Completions' logprobs carry each token's character offset in its choice's text (echo included).
  const offsets = ids.map((_, index) => echo?.[index]?.length ?? 0);
  // Forced tool calls: each choice's text is read as its calls (names, then arguments as they come).
  const calls = options.tools?.required ? ids.map(() => new ToolCallStreamParser()) : null;
  const toolChunks = (index: number, text: string) =>
    calls![index]!.push(text).map((event) => {
      const delta: ToolCallDelta =
        event.type === "call"
          ? { index: event.index, id: newToolCallId(), type: "function", function: { name: event.name, arguments: "" } }
          : { index: event.index, function: { arguments: event.text } };
      return chatChunk(head, index, { tool_calls: [delta] }, null, includeUsage);
    });
  const content = (
    index: number,
    text: string,
    finish: OpenAIFinishReason | null,
    logprobs: readonly TokenLogprob[] | null = null,
  ) => {
    if (kind === "chat") {
      // A reply that made calls ends with tool_calls (unless max_tokens cut it).
      if (finish === "stop" && calls && calls[index]!.calls > 0) finish = "tool_calls";
      return chatChunk(head, index, finish === null ? { content: text } : {}, finish, includeUsage, logprobs);
    }
    const offset = offsets[index] ?? 0;
    offsets[index] = offset + text.length;
    return textChunk(head, index, text, finish, includeUsage, logprobs ? { tokens: logprobs, offset } : null);
  };

  let failure: CorralError | null = null;
  try {
    for await (const event of relay.events(scope.deadline, scope.gone)) {
      if (event.type === "timeout") {
        failure = await scope.timedOut();
        break;
      }
      const id = ids[event.index]!;
      if (event.type === "diverged") {
        // The text already sent cannot be taken back, and the rerun's does not continue it.
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
          await scope.group.cancel("another job of the request did not succeed");
          const record = await options.records.get(id);
          failure = record
            ? jobOutcomeError(record, kind)
            : new JobFailedError(id, "its record is gone", "job_missing");
          break;
        }
      }
      if (!sse.opened) await open();
      if (event.type === "text" && calls) {
        for (const chunk of toolChunks(event.index, event.text)) await sse.send(chunk);
      } else if (event.type === "text") {
        await sse.send(content(event.index, event.text, null, event.logprobs ?? null));
      } else if (event.type === "reasoning") {
        // Only chats run on reasoning models have thoughts.
        if (kind === "chat") {
          await sse.send(chatChunk(head, event.index, { reasoning_content: event.text }, null, includeUsage));
        }
      } else {
        usages[event.index] = event.end.usage;
        await sse.send(content(event.index, "", event.end.finish_reason === "length" ? "length" : "stop"));
      }
    }
  } catch (thrown) {
    if (scope.gone.aborted) return;
    const error = asRedisUnavailable(thrown);
    await scope.group.cancel("relaying the token stream failed");
    if (!(error instanceof CorralError)) {
      scope.log.error({ err: error }, "relaying the token stream failed");
      if (!sse.opened) throw error;
      await sse.send(internalErrorBody(res.locals.requestId ?? "unknown"));
      sse.end();
      return;
    }
    failure = error;
  } finally {
    relay.close();
  }
  if (failure) {
    if (!sse.opened) throw failure;
    await sse.send(errorBody(failure));
    sse.end();
    return;
  }
  if (scope.gone.aborted) {
    await scope.group.cancel("the client disconnected");
    return;
  }
  if (!sse.opened) await open();
  if (includeUsage) await sse.send(usageChunk(head, kind, sumUsage(usages.filter(Boolean))));
  await sse.done();
}
