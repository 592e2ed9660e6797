import type { Response } from "express";
import { CorralError, type JobRecord, type JobRecords, type RedisKeys } from "@corral/shared";
import { asRedisUnavailable } from "../../http/error-handler.js";
import { errorBody, internalErrorBody } from "../../http/errors.js";
import { corralHeaders } from "../openai/corral-headers.js";
import { JobFailedError } from "../../openai-format/errors.js";
import { jobOutcomeError } from "../../openai-format/job-outcome.js";
import type { RequestScope } from "../openai/request-scope.js";
import { SseWriter } from "../openai/sse-writer.js";
import type { StreamHub } from "../openai/stream-hub.js";
import { TokenRelay } from "../openai/token-relay.js";
import { audioUsage } from "./transcript-formats.js";

export interface TranscriptStreamOptions {
  res: Response;
  /** The request's scope, holding its one job. */
  scope: RequestScope;
  streams: StreamHub;
  keys: RedisKeys;
  records: JobRecords;
  relay?: { blockMs?: number; settleMs?: number };
}

/**
 * Answers a `stream: true` transcription with OpenAI's server-sent events: one
 * `{"type":"transcript.text.delta","delta":…}` per segment as the worker appends it to the
 * job's token stream, then `{"type":"transcript.text.done","text":…,"usage":…}` with the
 * whole transcript. Nothing is sent before the first segment (or the end), so a job that
 * fails early still gets a plain HTTP error; later errors are one `data: {"error": …}` event.
 */
export async function streamTranscript(options: TranscriptStreamOptions): Promise<void> {
  const { res, scope } = options;
  const id = scope.group.ids[0]!;
  const sse = new SseWriter(res);
  const relay = new TokenRelay({
    reader: options.streams.reader(),
    keys: options.keys,
    ids: [id],
    readRecord: (jobId) => options.records.get(jobId),
    logger: scope.log,
    clock: scope.clock,
    ...options.relay,
  });
  const open = async (): Promise<void> => {
    const record = await options.records.get(id);
    sse.open(corralHeaders(record ? [record] : []));
  };

  let failure: CorralError | null = null;
  let final: JobRecord | null = null;
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
        const record = await options.records.get(id);
        if (event.end.status !== "succeeded" || event.end.finish_reason === "cancelled" || !record?.result) {
          failure = record
            ? jobOutcomeError(record, scope.kind)
            : new JobFailedError(id, "its record is gone", "job_missing");
          break;
        }
        final = record;
        break;
      }
      if (!sse.opened) await open();
      if (event.text !== "") await sse.send({ type: "transcript.text.delta", delta: event.text });
    }
  } catch (thrown) {
    if (scope.gone.aborted) return;
    const error = asRedisUnavailable(thrown);
    await scope.group.cancel("relaying the transcript failed");
    if (!(error instanceof CorralError)) {
      scope.log.error({ err: error }, "relaying the transcript failed");
      if (!sse.opened) throw error;
      await sse.send(internalErrorBody(res.locals.requestId ?? "unknown"));
      sse.end();
      return;
    }
    failure = error;
  } finally {
    relay.close();
  }
  if (scope.gone.aborted) {
    await scope.group.cancel("the client disconnected");
    return;
  }
  if (!failure && final && !final.result?.transcription) {
    failure = new JobFailedError(id, "the worker returned no transcription", "transcription_missing");
  }
  if (failure || !final) {
    failure ??= new JobFailedError(id, "the stream ended without the job's end", "job_missing");
    if (!sse.opened) throw failure;
    await sse.send(errorBody(failure));
    sse.end();
    return;
  }
  if (!sse.opened) await open();
  await sse.send({
    type: "transcript.text.done",
    text: final.result!.text,
    usage: audioUsage(final.result!.transcription!.duration),
  });
  sse.end();
}
