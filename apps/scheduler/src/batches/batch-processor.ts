import { once } from "node:events";
import { PassThrough } from "node:stream";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  CorralError,
  type BatchError,
  type BatchLineResult,
  type BatchStatus,
  type RedisKeys,
  type StoredBatch,
} from "@corral/shared";
import type { FileService } from "../files/file-service.js";
import { readLines } from "../files/read-lines.js";
import type { JobService } from "../jobs/job-service.js";
import type { BulkJob } from "../jobs/types.js";
import { errorFileId, inputCopyName, lineJobId, lineRequestId, outputFileId } from "./batch-id.js";
import {
  checkLine,
  faultResult,
  lineTooLongError,
  outputLine,
  parseLineBody,
  type Closing,
  type ReplyShape,
} from "./batch-lines.js";
import type { BatchCounters, BatchStore } from "./batch-store.js";
import { validateInput } from "./validate-input.js";

export interface BatchProcessorOptions {
  /** Command connection (the active batches set). */
  redis: Redis;
  keys: RedisKeys;
  store: BatchStore;
  files: FileService;
  jobs: JobService;
  logger: Logger;
  /** Lines per ingest chunk (one `addBulk` per lane per chunk). @defaultValue 200 */
  chunkLines?: number;
  /** Longest input line run (the online body limit); a longer one is a per-line fault, never buffered whole. @defaultValue 1 MiB */
  maxLineBytes?: number;
  /** Lease length; progress saves renew it. @defaultValue 30000 */
  leaseMs?: number;
  /** After the cancel sweep, how long running lines get to report before the batch is finalized without them. @defaultValue 30000 */
  cancelGraceMs?: number;
  /** Called with the number of lines each ingest chunk handled (metrics). */
  onIngested?: (lines: number) => void;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/** The scheduler's hold on one batch while it works on it. */
export interface Lease {
  token: string;
  /** Aborts when the lease is lost or the scheduler shuts down. */
  signal: AbortSignal;
}

/** The lease was lost (another scheduler took the batch over): stop at once. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

const ACTIVE: readonly BatchStatus[] = ["validating", "in_progress", "finalizing", "cancelling"];

/** One ingest chunk: its lines' numbers, its jobs with where each one's line starts, and its per-line faults. */
interface Chunk {
  lines: number[];
  jobs: BulkJob[];
  starts: { offset: number; line: number }[];
  faults: { customId: string; result: BatchLineResult; line: number }[];
}

const newChunk = (): Chunk => ({ lines: [], jobs: [], starts: [], faults: [] });

/** What a saved chunk says: go on, stop (the batch left in_progress, or the input ended), or wait (the tenant is at its limits). */
type Outcome = "go" | "stop" | "wait";

/** Ingest chunks being queued in Redis at once, besides the one being read. */
const INGEST_DEPTH = 1;

const INPUT_MISSING: BatchError = {
  code: "input_file_missing",
  message:
    "The batch's copy of its input file is missing from the file store (is CORRAL_DATA_DIR a volume every scheduler shares?).",
  param: "input_file_id",
  line: null,
};

/**
 * The work on one batch, done by whichever scheduler holds its lease, one step at a time:
 * validate the input (structure), ingest it in chunks as jobs, sweep a cancelled batch's
 * waiting lines, and finalize (assemble the output and error files). Every step starts
 * from what Redis says, so a scheduler that takes a batch over (the previous one died)
 * carries on where it stopped.
 */
export class BatchProcessor {
  readonly #o: Required<Omit<BatchProcessorOptions, "onIngested">> & Pick<BatchProcessorOptions, "onIngested">;

  constructor(options: BatchProcessorOptions) {
    this.#o = {
      chunkLines: 200,
      maxLineBytes: 1024 * 1024,
      leaseMs: 30_000,
      cancelGraceMs: 30_000,
      clock: Date.now,
      ...options,
    };
    if (!Number.isInteger(this.#o.chunkLines) || this.#o.chunkLines < 1)
      throw new RangeError("chunkLines must be a positive integer");
  }

  /** Advances the batch as far as it can go now. Returns when it waits for jobs, is final, or the lease ends. */
  async step(id: string, lease: Lease): Promise<void> {
    const { store } = this.#o;
    for (let round = 0; round < 8 && !lease.signal.aborted; round++) {
      const batch = await store.get(id);
      if (!batch) {
        await this.#o.redis.srem(this.#o.keys.activeBatches, id);
        return;
      }
      if (!ACTIVE.includes(batch.status)) {
        await this.#o.redis.srem(this.#o.keys.activeBatches, id);
        return;
      }
      const counters = await store.counters(id);
      const log = this.#o.logger.child({ batch_id: id, tenant: batch.tenant });
      if ((await this.#o.files.store.size(inputCopyName(id))) === null) {
        // Nothing can go on without the input (a scheduler whose CORRAL_DATA_DIR is not the shared one?).
        log.error("the batch's copy of its input file is missing: batch failed");
        if (batch.status !== "validating") await this.#sweep(batch, counters, lease, log);
        await this.#fail(batch, [INPUT_MISSING], counters.total);
        return;
      }
      if (counters.closing) {
        await this.#finalize(batch, counters.closing as Closing, lease, log);
        return;
      }
      const now = this.#o.clock();
      switch (batch.status) {
        case "validating":
          await this.#validate(batch, lease, log);
          continue;
        case "in_progress": {
          if (batch.expires_at !== null && now >= batch.expires_at * 1000) {
            log.info("the completion window passed: expiring the batch");
            await store.close(id, "expired");
            continue;
          }
          if (!counters.ingestDone) {
            // At the tenant's queued limits: wait for the next tick, as lines finish.
            if ((await this.#ingest(batch, counters, lease, log)) === "wait") return;
            continue;
          }
          if (counters.completed + counters.failed + counters.cancelled >= counters.total) {
            await this.#finalize(batch, "completed", lease, log);
          }
          return;
        }
        case "finalizing":
          await this.#finalize(batch, "completed", lease, log);
          return;
        case "cancelling": {
          if (!counters.ingestDone) {
            // Only the lease holder ingests, and that is this scheduler: no ingest runs now.
            await store.setCounters(id, { ingest_done: 1 });
            continue;
          }
          if (counters.sweptAt === null) {
            await this.#sweep(batch, counters, lease, log);
            await store.setCounters(id, { swept_at: this.#o.clock() });
            continue;
          }
          const accounted = counters.completed + counters.failed + counters.cancelled;
          if (accounted >= counters.ingested || now - counters.sweptAt >= this.#o.cancelGraceMs) {
            if (await store.close(id, "cancelled")) continue;
          }
          return;
        }
        default:
          return;
      }
    }
  }

  /** The structural pass: fails the batch with line numbers, or moves it to in_progress with its total. */
  async #validate(batch: StoredBatch, lease: Lease, log: Logger): Promise<void> {
    const { store, files } = this.#o;
    const path = files.store.path(inputCopyName(batch.id));
    const check = await validateInput(path, batch.endpoint, {
      signal: lease.signal,
      maxLineBytes: this.#o.maxLineBytes,
    });
    if (lease.signal.aborted) return;
    if (check.errors.length > 0) {
      const errors = [...check.errors];
      if (check.omitted > 0) {
        errors.push({
          code: "more_errors",
          message: `${check.omitted} more lines have errors.`,
          param: null,
          line: null,
        });
      }
      log.info({ errors: check.errors.length + check.omitted }, "batch input has structural errors: batch failed");
      await this.#fail(batch, errors, check.total);
      return;
    }
    await store.setCounters(batch.id, { total: check.total });
    const moved = await store.transition(batch.id, ["validating"], {
      status: "in_progress",
      in_progress_at: Math.floor(this.#o.clock() / 1000),
    });
    if (moved) log.info({ total: check.total }, "batch validated; ingesting");
  }

  async #fail(batch: StoredBatch, errors: BatchError[], total = 0): Promise<void> {
    const { store, files } = this.#o;
    const failed = await store.transition(batch.id, ACTIVE, {
      status: "failed",
      failed_at: Math.floor(this.#o.clock() / 1000),
      errors: { object: "list", data: errors },
      request_counts: { total, completed: 0, failed: 0 },
    });
    if (!failed) return;
    await store.dropWorkingState(batch.id);
    await files.store.remove(inputCopyName(batch.id));
  }

  /**
   * Reads the input from where the last ingest stopped, in chunks: each chunk's valid
   * lines go to their lanes with one `submitMany`, its invalid ones (per-line faults) to
   * the results as failed; then the position is saved. Stops when the batch leaves
   * in_progress (a cancel), or the lease ends. A chunk that does not fit the tenant's
   * queued limits (jobs and bytes, which pending lines count against) is queued as far as
   * it fits, the position is saved at the first line left out, and the ingest answers
   * "wait": the next tick goes on from there, once lines have finished.
   */
  async #ingest(batch: StoredBatch, counters: BatchCounters, lease: Lease, log: Logger): Promise<"wait" | void> {
    const { store, files, jobs, chunkLines } = this.#o;
    const path = files.store.path(inputCopyName(batch.id));
    let ingested = counters.ingested;
    let position = { offset: counters.ingestOffset, line: counters.ingestLine };
    let chunk: Chunk = newChunk();
    const started = this.#o.clock();
    if (counters.ingested === 0) log.info({ total: counters.total }, "ingest started");
    else log.debug({ from_line: counters.ingestLine, ingested: counters.ingested }, "ingest resumed");

    // Chunks are pipelined: up to INGEST_DEPTH chunks are being queued in Redis while the
    // next one is read and checked here, so neither this process nor Redis waits on the
    // other. Positions are saved strictly in order: a chunk's save waits for its own
    // queueing and for the previous chunk's save, so a failure never saves past a chunk
    // that did not make it, and a chunk after one that waits saves nothing (its lines,
    // queued or not, are submitted again next time: a no-op for those queued).
    const window: Promise<Outcome>[] = [];
    let lastSave: Promise<Outcome> = Promise.resolve("go");
    const submit = (of: Chunk, after: { offset: number; line: number }, done: boolean): Promise<Outcome> => {
      const queued = (async (): Promise<{ offset: number; line: number } | null> => {
        if (of.lines.length === 0) return null;
        const { rejected, waiting } = await jobs.submitMany(batch.tenant, of.jobs, { source: "batch" });
        for (const { index, job, error } of rejected)
          of.faults.push({ customId: job.custom_id ?? "", result: faultResult(error), line: of.starts[index]!.line });
        const cut = waiting === null ? null : of.starts[waiting]!;
        await store.recordLineResults(
          batch.id,
          of.faults.filter((fault) => cut === null || fault.line < cut.line),
        );
        return cut;
      })();
      const previous = lastSave;
      const saved = (async (): Promise<Outcome> => {
        const cut = await queued;
        const before = await previous;
        if (before === "wait") return "wait";
        const count = cut === null ? of.lines.length : of.lines.filter((n) => n < cut.line).length;
        ingested += count;
        const result = await store.saveProgress(batch.id, lease.token, this.#o.leaseMs, {
          ...(cut ?? after),
          ingested,
          done: done && cut === null,
        });
        if (result === "lost") throw new LeaseLostError(`lost the lease of batch ${batch.id}`);
        if (count > 0) this.#o.onIngested?.(count);
        if (cut !== null) return "wait";
        return done || before === "stop" || result === "stopped" ? "stop" : "go";
      })();
      queued.catch(() => undefined); // surfaces through `saved`
      saved.catch(() => undefined); // awaited through the window; never left unhandled
      lastSave = saved;
      return saved;
    };

    const hand = async (done: boolean): Promise<Outcome> => {
      window.push(submit(chunk, position, done));
      chunk = newChunk();
      let outcome: Outcome = "go";
      while (window.length > (done ? 0 : INGEST_DEPTH)) {
        const next = await window.shift()!;
        if (next === "wait") outcome = "wait";
        else if (next === "stop" && outcome === "go" && !done) outcome = "stop";
        if (outcome !== "go" && !done) return outcome;
      }
      return outcome;
    };

    try {
      for await (const line of readLines(path, {
        start: position.offset,
        firstLine: position.line,
        maxLineBytes: this.#o.maxLineBytes,
        signal: lease.signal,
      })) {
        const start = { offset: position.offset, line: line.number };
        position = { offset: line.end, line: line.number + 1 };
        if (!line.tooLong && line.text.trim() === "") continue;
        chunk.lines.push(line.number);
        const checked = line.tooLong ? null : checkLine(line.text, line.number, batch.endpoint);
        if (checked === null) {
          chunk.faults.push({
            customId: `line-${line.number}`,
            result: faultResult(lineTooLongError(line.number, line.bytes, this.#o.maxLineBytes)),
            line: line.number,
          });
        } else if (!checked.ok) {
          // Validated already; the copy cannot change. Recorded rather than trusted.
          chunk.faults.push({
            customId: `line-${line.number}`,
            result: faultResult(new CorralError(checked.error.message, { code: checked.error.code })),
            line: line.number,
          });
        } else {
          const { custom_id, body } = checked.request;
          try {
            const parsed = parseLineBody(batch.endpoint, body);
            const input = parsed.build(jobs.resolveModel(parsed.model));
            chunk.jobs.push({ id: lineJobId(batch.id, line.number), input, batch_id: batch.id, custom_id });
            chunk.starts.push(start);
          } catch (error) {
            if (!(error instanceof CorralError)) throw error;
            chunk.faults.push({ customId: custom_id, result: faultResult(error), line: line.number });
          }
        }
        if (chunk.lines.length >= chunkLines) {
          const outcome = await hand(false);
          if (outcome === "wait") {
            log.debug({ ingested }, "ingest waits: the tenant is at its queued limits");
            return "wait";
          }
          if (outcome === "stop") {
            log.info({ ingested }, "ingest stopped: the batch is no longer in progress");
            return;
          }
        }
      }
      if (lease.signal.aborted) return;
      if ((await hand(true)) === "wait") {
        log.debug({ ingested }, "ingest waits: the tenant is at its queued limits");
        return "wait";
      }
    } finally {
      await Promise.allSettled(window);
    }
    const seconds = Math.max(0.001, (this.#o.clock() - started) / 1000);
    log.info({ ingested, lines_per_s: Math.round((ingested - counters.ingested) / seconds) }, "ingest finished");
  }

  /**
   * Cancel (or expiry) of a batch's lines, through the one cancel path
   * ({@link JobService.cancelMany}): waiting jobs leave their lanes and are recorded
   * cancelled (exactly once, by the job state machine); running ones get a cancel on the
   * cancel channel, and their workers record them cancelled.
   */
  async #sweep(batch: StoredBatch, counters: BatchCounters, lease: Lease, log: Logger): Promise<void> {
    const { jobs, chunkLines } = this.#o;
    let removed = 0;
    let signalled = 0;
    for (let first = 1; first <= counters.lines && !lease.signal.aborted; first += chunkLines) {
      const ids: string[] = [];
      for (let n = first; n < first + chunkLines && n <= counters.lines; n++) ids.push(lineJobId(batch.id, n));
      const done = await jobs.cancelMany(ids);
      removed += done.cancelled;
      signalled += done.signalled;
    }
    log.info({ removed, signalled }, "batch lines cancelled: waiting ones removed, running ones signalled");
  }

  /**
   * Closes the batch to new results, writes the output file (200 replies) and the error
   * file (everything else, including lines that never ran) in input order, then moves the
   * batch to its final status with both file ids and its counts. Safe to repeat: the file
   * ids are fixed per batch, so a retried finalize overwrites what a crashed one left.
   */
  async #finalize(batch: StoredBatch, target: Closing, lease: Lease, log: Logger): Promise<void> {
    const { store, files } = this.#o;
    if (target === "completed" && batch.status === "in_progress") {
      const moved = await store.transition(batch.id, ["in_progress"], {
        status: "finalizing",
        finalizing_at: Math.floor(this.#o.clock() / 1000),
      });
      if (!moved) return; // cancelled meanwhile: the next step handles it
    }
    if (!(await store.close(batch.id, target))) {
      const closing = (await store.counters(batch.id)).closing;
      if (closing === null) return;
      target = closing as Closing;
    }
    const counters = await store.counters(batch.id);
    if (target !== "completed" && counters.sweptAt === null) {
      await this.#sweep(batch, counters, lease, log);
      if (lease.signal.aborted) return;
      await store.setCounters(batch.id, { swept_at: this.#o.clock() });
    }
    const outId = outputFileId(batch.id);
    const errId = errorFileId(batch.id);
    const written = await this.#writeFiles(batch, target, outId, errId, lease);
    if (written === null) return;
    const outFile =
      written.output.lines > 0
        ? await files.register(batch.tenant, {
            id: outId,
            filename: `${batch.id}_output.jsonl`,
            purpose: "batch_output",
            ...written.output,
          })
        : null;
    const errFile =
      written.errors.lines > 0
        ? await files.register(batch.tenant, {
            id: errId,
            filename: `${batch.id}_error.jsonl`,
            purpose: "batch_output",
            ...written.errors,
          })
        : null;
    if (!outFile) await files.store.remove(outId);
    if (!errFile) await files.store.remove(errId);
    const now = Math.floor(this.#o.clock() / 1000);
    const final = await store.transition(batch.id, ACTIVE, {
      status: target,
      output_file_id: outFile?.id ?? null,
      error_file_id: errFile?.id ?? null,
      request_counts: { total: counters.total, completed: written.output.lines, failed: written.errors.lines },
      ...(target === "completed"
        ? { completed_at: now }
        : target === "cancelled"
          ? { cancelled_at: now }
          : { expired_at: now }),
    });
    if (!final) return;
    await store.dropWorkingState(batch.id);
    await files.store.remove(inputCopyName(batch.id));
    await this.#dropLineRecords(batch, counters.lines);
    log.info(
      {
        status: target,
        completed: written.output.lines,
        failed: written.errors.lines,
        output_file_id: outFile?.id ?? null,
      },
      "batch finalized",
    );
  }

  /**
   * Deletes the job records of the batch's lines once their results are in the files (a
   * 10^6-line batch would otherwise keep 10^6 records in Redis for a week). A line still
   * running (a cancelled batch past its grace) then finds its record gone, and its
   * worker drops the result.
   */
  async #dropLineRecords(batch: StoredBatch, lines: number): Promise<void> {
    const { jobs, chunkLines } = this.#o;
    for (let first = 1; first <= lines; first += chunkLines) {
      const ids: string[] = [];
      for (let n = first; n < first + chunkLines && n <= lines; n++) ids.push(lineJobId(batch.id, n));
      await jobs.dropRecords(ids);
    }
  }

  /** Streams the input once and writes both files; null when the lease ended first. */
  async #writeFiles(
    batch: StoredBatch,
    closing: Closing,
    outId: string,
    errId: string,
    lease: Lease,
  ): Promise<{ output: { bytes: number; lines: number }; errors: { bytes: number; lines: number } } | null> {
    const { store, files, chunkLines } = this.#o;
    const out = new PassThrough();
    const err = new PassThrough();
    const writingOut = files.store.write(outId, out);
    const writingErr = files.store.write(errId, err);
    const write = async (stream: PassThrough, text: string) => {
      if (text && !stream.write(text)) await once(stream, "drain");
    };
    const counts = { out: 0, err: 0 };
    let pending: { n: number; customId: string; shape: ReplyShape | null }[] = [];
    const flush = async () => {
      const results = await store.results(
        batch.id,
        pending.map((p) => p.customId),
      );
      let okText = "";
      let errText = "";
      pending.forEach((p, i) => {
        const { ok, line } = outputLine({
          id: lineRequestId(batch.id, p.n),
          customId: p.customId,
          shape: p.shape,
          result: results[i] ?? null,
          closing,
        });
        const json = `${JSON.stringify(line)}\n`;
        if (ok) {
          okText += json;
          counts.out++;
        } else {
          errText += json;
          counts.err++;
        }
      });
      pending = [];
      await write(out, okText);
      await write(err, errText);
    };
    try {
      const reading = { signal: lease.signal, maxLineBytes: this.#o.maxLineBytes };
      for await (const line of readLines(files.store.path(inputCopyName(batch.id)), reading)) {
        if (!line.tooLong && line.text.trim() === "") continue;
        const checked = line.tooLong ? null : checkLine(line.text, line.number, batch.endpoint);
        const customId = checked?.ok ? checked.request.custom_id : `line-${line.number}`;
        let shape: ReplyShape | null = null;
        if (checked?.ok) {
          try {
            shape = parseLineBody(batch.endpoint, checked.request.body).shape;
          } catch {
            shape = null; // a per-line fault: its result says why
          }
        }
        pending.push({ n: line.number, customId, shape });
        if (pending.length >= chunkLines) await flush();
      }
      await flush();
      out.end();
      err.end();
      const [output, errors] = await Promise.all([writingOut, writingErr]);
      return { output, errors };
    } catch (error) {
      out.destroy(error as Error);
      err.destroy(error as Error);
      await Promise.allSettled([writingOut, writingErr]);
      if (lease.signal.aborted) return null;
      throw error;
    }
  }
}
