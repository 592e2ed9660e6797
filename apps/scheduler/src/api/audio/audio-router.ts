import { Router, type Request, type Response } from "express";
import { InvalidRequestError, UnschedulableError, type RedisKeys } from "@corral/shared";
import { principalOf } from "../../auth/authenticate.js";
import { bindLog } from "../../http/request-context.js";
import type { InteractiveLeases } from "../../jobs/interactive-leases.js";
import type { JobService } from "../../jobs/job-service.js";
import type { WorkerRegistry } from "../../workers/worker-registry.js";
import type { TenantStreams } from "../connections/tenant-streams.js";
import { JobCancelledError, JobFailedError } from "../../openai-format/errors.js";
import { corralHeaders, jobEarlyHints } from "../openai/corral-headers.js";
import { assertPlaceable } from "../openai/placement.js";
import { RequestScope } from "../openai/request-scope.js";
import type { StreamHub } from "../openai/stream-hub.js";
import { parseAudioRequest } from "./audio-request.js";
import { DecodeSlots } from "./decode-slots.js";
import { measureAudio } from "./measure-audio.js";
import { receiveAudio } from "./receive-audio.js";
import { formatTranscript } from "./transcript-formats.js";
import { streamTranscript } from "./transcript-stream.js";

export interface AudioRouterOptions {
  jobs: JobService;
  workers: WorkerRegistry;
  streams: StreamHub;
  keys: RedisKeys;
  /** Largest upload, bytes (`CORRAL_MAX_AUDIO_BYTES`). */
  maxBytes: number;
  /** Longest decoded audio, seconds (`CORRAL_MAX_AUDIO_SECONDS`). */
  maxSeconds: number;
  /** Longest a request waits for its job (then 504, and the job is cancelled); 0 for no limit. */
  requestTimeoutMs: number;
  /** @defaultValue none */
  leases?: InteractiveLeases;
  /** @defaultValue no limit */
  tenantStreams?: TenantStreams;
  /** Token relay tuning (tests). */
  relay?: { blockMs?: number; settleMs?: number };
  /**
   * Uploads decoded at once (each holds 64 KB per second of audio while it is measured).
   * @defaultValue 2
   */
  maxConcurrentDecodes?: number;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/**
 * OpenAI's speech to text, mounted at `/v1/audio`: `POST /transcriptions` and
 * `POST /translations` (to English). The upload is decoded here once, to refuse what is
 * not audio and to measure it, then stored as it came for the worker, and the request
 * becomes one job (kind `transcription` or `translation`, source `openai`) on its Whisper
 * model's lane, with the tenants, quotas, priorities, cancel-on-disconnect and job records
 * of the chat routes. docs/api.md documents the fields, formats and limits.
 */
export function audioRouter(options: AudioRouterOptions): Router {
  const { jobs } = options;
  const clock = options.clock ?? Date.now;
  const router = Router();
  const decodes = new DecodeSlots(options.maxConcurrentDecodes ?? 2);

  const handle =
    (kind: "transcription" | "translation") =>
    async (req: Request, res: Response): Promise<void> => {
      try {
        await run(kind, req, res);
      } catch (error) {
        // As on the chat routes: a retry cannot fix a cancel on purpose or a model no worker fits.
        if ((error instanceof JobCancelledError || error instanceof UnschedulableError) && !res.headersSent)
          res.setHeader("x-should-retry", "false");
        throw error;
      }
    };

  const run = async (kind: "transcription" | "translation", req: Request, res: Response): Promise<void> => {
    const { tenant } = principalOf(res.locals);
    const upload = await receiveAudio(req, options.maxBytes);
    const request = parseAudioRequest(upload.fields);
    const model = jobs.resolveModel(request.model);
    if (model.kind !== "whisper") {
      throw new InvalidRequestError(
        `Model ${model.id} is not a Whisper (speech to text) model; ${kind}s need one (GET /v1/models lists each model's kind).`,
        "model",
        "model_not_supported",
      );
    }
    if (request.stream) {
      const release = options.tenantStreams?.acquire(tenant);
      if (release) res.once("close", release);
    }
    jobs.admit(tenant);
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.once("close", onClose);
    let seconds: number;
    try {
      seconds = await decodes.run(() =>
        gone.signal.aborted
          ? Promise.resolve(0)
          : measureAudio(upload.data, upload.filename, options.maxSeconds, gone.signal),
      );
    } finally {
      res.off("close", onClose);
    }
    if (gone.signal.aborted) return;
    assertPlaceable(model, await options.workers.list());

    const scope = new RequestScope({
      res,
      jobs,
      tenant,
      kind,
      timeoutMs: options.requestTimeoutMs,
      clock,
      log: res.locals.log,
    });
    await scope.group.submit([
      {
        model: model.id,
        kind,
        audio: { data: upload.data, seconds, filename: upload.filename },
        ...(request.prompt !== null ? { prompt: request.prompt } : {}),
        ...(request.language !== null ? { language: request.language } : {}),
        ...(request.granularities.has("word") ? { word_timestamps: true } : {}),
        temperature: request.temperature,
        stream: request.stream,
      },
    ]);
    const ids = scope.group.ids;
    bindLog(res, { job_ids: ids });
    if (options.leases && ids.length > 0) {
      try {
        await options.leases.hold(ids);
      } catch (error) {
        await scope.group.cancel("the interactive lease could not be taken");
        throw error;
      }
      res.once("close", () => options.leases!.release(ids));
    }
    if (ids.length > 0 && !res.headersSent && !res.req.socket.destroyed) res.writeEarlyHints(jobEarlyHints(ids));

    if (request.stream) {
      await streamTranscript({
        res,
        scope,
        streams: options.streams,
        keys: options.keys,
        records: jobs.records,
        ...(options.relay ? { relay: options.relay } : {}),
      });
      return;
    }
    const records = await scope.succeededRecords();
    if (!records) return;
    const record = records[0]!;
    const transcription = record.result!.transcription;
    if (!transcription)
      throw new JobFailedError(record.id, "the worker returned no transcription", "transcription_missing");
    const answer = formatTranscript(
      { task: kind === "translation" ? "translate" : "transcribe", text: record.result!.text, transcription },
      request.responseFormat,
      request.granularities,
    );
    res
      .set(corralHeaders(records, { timings: true }))
      .status(200)
      .type(answer.contentType)
      .send(answer.body);
  };

  router.post("/transcriptions", handle("transcription"));
  router.post("/translations", handle("translation"));
  return router;
}
