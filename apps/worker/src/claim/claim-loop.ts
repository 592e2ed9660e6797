import type { Logger } from "pino";
import {
  NOTHING_HELD,
  laneName,
  requirementOn,
  type FairQueue,
  type LaneWithJobs,
  type LoadedModel as LoadedModelState,
} from "@corral/shared";
import type { CatalogCache } from "./catalog-cache.js";
import type { ClaimCadence } from "./claim-cadence.js";
import { decideClaim, type ClaimDecision, type LaneView } from "./claim-policy.js";
import type { ActiveJob, JobRunner } from "./job-runner.js";
import type { LeaseCheck } from "./lease-check.js";
import type { LaneMarkers } from "./lane-markers.js";
import type { LaneReader } from "./lane-reader.js";
import type { LaneJob, LaneWorkers } from "./lane-workers.js";
import type { LockKeeper } from "./lock-keeper.js";
import type { LoadedEntry, LoadedModels } from "./loaded-models.js";
import type { MemoryProbe } from "./memory-probe.js";
import type { TenantGate } from "./tenant-gate.js";
import type { UsageMeter } from "./usage-meter.js";
import type { ClaimMetrics, SlotIdentity } from "./types.js";

/**
 * What the loop works with. The collaborators are built by the composition root
 * (`slot/slot.ts`) on one Redis connection and one logger; the loop owns them from then
 * on: `close()` closes them once the active jobs are done.
 */
export interface ClaimLoopOptions {
  slot: SlotIdentity;
  probe: MemoryProbe;
  metrics: ClaimMetrics;
  /** The claim code's logger (`component: "claim"`). */
  logger: Logger;
  /** The published catalog, by lane. */
  catalog: CatalogCache;
  /** The lanes that hold jobs, and their lengths and head jobs, for full looks. */
  lanes: LaneReader;
  /** Blocks an idle loop on the lanes' BullMQ markers. */
  markers: LaneMarkers;
  /** One BullMQ Worker per lane, on one connection: claims, fetch-next completions; the cluster's stalled sweep. */
  workers: LaneWorkers;
  /** The models loaded (or loading) here; its `onChange` wakes the loop. */
  models: LoadedModels;
  /** Fair claim: releases the lanes' held jobs, fairest first, just before the loop takes them. */
  fair: FairQueue;
  /** Settles fair-claim charges and counts tenants' tokens (flushed on close). */
  usage: UsageMeter;
  /** Tenants' `max_active` places (swept every `tenantSweepMs`). */
  gate: TenantGate;
  /** Runs each claimed job to a final state. */
  runner: JobRunner;
  /** Renews every job lock and tenant place the slot holds (started with the loop). */
  keeper: LockKeeper;
  /** When to read the lanes, and how many jobs to claim at once in between. */
  cadence: ClaimCadence;
  swapAfterMs: number;
  /**
   * The start of every lock token this process claims with (a counter follows). The
   * supervisor finds the jobs of a slot process that died by it, so it must be unique to the
   * process. @defaultValue `<slot id>:<pid>:`
   */
  tokenPrefix?: string;
  /**
   * How often the slot looks for places freed by expired leases (a slot that died) among
   * tenants with parked jobs (`max_active`). @defaultValue 5000
   */
  tenantSweepMs?: number;
  /**
   * Checks, on the same tick, the interactive leases of the running OpenAI jobs, and
   * cancels those whose scheduler died. @defaultValue none (no check)
   */
  leases?: LeaseCheck;
  /** @defaultValue Date.now */
  now?: () => number;
  /**
   * How many lanes a full look reads besides those of the models loaded here: drawn from
   * the 4 × this many with jobs ready that waited longest since they were last served,
   * among those whose model could fit the device. A look's cost stays the same however
   * many models have work. @defaultValue 8
   */
  lookLanes?: number;
  /**
   * First wait while the slot cannot claim (all sequences busy, a model loading); it doubles
   * up to `idleMaxMs`. A finished job or a load wakes the loop early. @defaultValue 50
   */
  idleMinMs?: number;
  /**
   * Longest wait. With no work at all the loop blocks on the lanes' BullMQ markers (a new
   * job wakes it at once) for up to this long, then looks again. @defaultValue 500
   */
  idleMaxMs?: number;
}

export type ClaimLoopState = "starting" | "idle" | "busy" | "draining";

/**
 * A slot's claim loop: the mechanism that applies two pure policies. Each round it asks
 * its {@link ClaimCadence} whether to claim straight from the lane a fresh look chose
 * (and how many jobs at once), to wait, or to make a full look: read the lanes (lengths
 * and head jobs), its device's live free memory and its loaded models, ask
 * {@link decideClaim} what to do, and claim at most one job. A round that claims goes
 * again at once. With no work in any
 * lane it blocks on the lanes' BullMQ markers, so a new job wakes it at once; other waits
 * (sequences busy, a model loading) back off from `idleMinMs` to `idleMaxMs`, and a
 * finished job, a load or a cancel wakes the loop early. Jobs run concurrently, up to
 * each loaded model's `sequences`.
 */
export class ClaimLoop {
  readonly #o: Required<Omit<ClaimLoopOptions, "leases">> & Pick<ClaimLoopOptions, "leases">;
  readonly #log: Logger;
  readonly #catalog: CatalogCache;
  readonly #lanes: LaneReader;
  readonly #workers: LaneWorkers;
  readonly #runner: JobRunner;
  readonly #gate: TenantGate;
  readonly #usage: UsageMeter;
  readonly #fair: FairQueue;
  readonly #markers: LaneMarkers;
  readonly #models: LoadedModels;
  readonly #keeper: LockKeeper;
  readonly #active = new Map<string, ActiveJob>();
  readonly #running = new Set<Promise<void>>();
  #loop: Promise<void> | null = null;
  #sweep: NodeJS.Timeout | null = null;
  #stopping = false;
  #draining = false;
  #wake: (() => void) | null = null;
  #woken = false;
  #tokens = 0;
  #closed: Promise<void> | null = null;
  #lastDecision: ClaimDecision["kind"] | null = null;
  /** The device's total memory at the last look's reading (null before the first). */
  #totalBytes: number | null = null;
  /** Why the last round claimed nothing. */
  #waitReason: Extract<ClaimDecision, { kind: "wait" }>["reason"] | null = null;
  /** The catalog's lanes at the last look (the markers an idle loop blocks on). */
  #known: string[] = [];
  /** When the loop reads the lanes, and how many jobs it claims at once in between (the fast lane). */
  readonly #cadence: ClaimCadence;
  /** The BZPOPMIN on the lanes' markers in flight, with its one continuation. */
  #markerWait: Promise<void> | null = null;

  constructor(options: ClaimLoopOptions) {
    this.#o = {
      now: Date.now,
      idleMinMs: 50,
      idleMaxMs: 500,
      lookLanes: 8,
      tenantSweepMs: 5000,
      tokenPrefix: `${options.slot.id}:${process.pid}:`,
      ...options,
    };
    this.#log = options.logger;
    this.#catalog = options.catalog;
    this.#lanes = options.lanes;
    this.#markers = options.markers;
    this.#workers = options.workers;
    this.#models = options.models;
    this.#usage = options.usage;
    this.#fair = options.fair;
    this.#gate = options.gate;
    this.#runner = options.runner;
    this.#keeper = options.keeper;
    this.#cadence = options.cadence;
    this.#models.onChange(() => this.#wakeUp());
  }

  /** Starts claiming. */
  start(): void {
    this.#loop ??= this.#run();
    this.#keeper.start();
    this.#workers.start();
    this.#sweep ??= setInterval(() => {
      this.#checkLeases().catch((error: unknown) => this.#log.warn({ err: error }, "interactive lease check failed"));
      this.#gate.sweep().then(
        (promoted) => {
          if (promoted > 0) this.#log.info({ promoted }, "promoted parked jobs into places freed by expired leases");
        },
        (error: unknown) => this.#log.warn({ err: error }, "tenant sweep failed"),
      );
    }, this.#o.tenantSweepMs).unref();
  }

  /**
   * Cancels the running jobs of OpenAI requests whose scheduler's lease ran out: nobody
   * listens to them any more. One read for all of them; none without such jobs.
   */
  async #checkLeases(): Promise<void> {
    if (!this.#o.leases || this.#stopping) return;
    const interactive = [...this.#active.values()]
      .filter((active) => active.job.data.source === "openai")
      .map((active) => ({ id: active.job.id!, createdAt: active.job.data.created_at }));
    for (const id of await this.#o.leases.expired(interactive)) {
      if (this.cancel(id)) this.#log.info({ job: id }, "its scheduler's interactive lease ran out");
    }
  }

  /** Cancels a just-claimed OpenAI job when its lease ran out (one `ZMSCORE`). */
  #checkLease(job: LaneJob): void {
    this.#o
      .leases!.expired([{ id: job.id!, createdAt: job.data.created_at }])
      .then((expired) => {
        if (expired.length > 0 && this.cancel(job.id!))
          this.#log.info({ job: job.id }, "claimed a job whose scheduler's interactive lease ran out");
      })
      .catch((error: unknown) => this.#log.warn({ err: error, job: job.id }, "interactive lease check failed"));
  }

  /** Aborts the job if this slot runs it. */
  cancel(jobId: string): boolean {
    const active = this.#active.get(jobId);
    if (!active) return false;
    this.#log.info({ job: jobId }, "cancelling a running job");
    active.controller.abort("cancelled");
    return true;
  }

  get state(): ClaimLoopState {
    if (this.#draining) return "draining";
    if (this.#loop === null) return "starting";
    return this.#active.size > 0 ? "busy" : "idle";
  }

  get activeJobs(): string[] {
    return [...this.#active.keys()];
  }

  /** The loaded (and loading) models, for heartbeats. */
  loadedModels(): LoadedModelState[] {
    return this.#models.entries().map((entry) => ({
      model: entry.model.id,
      requirement_bytes: entry.bytes,
      sequences: entry.model.sequences,
      busy_sequences: entry.busy,
      loaded_at: entry.loadedAt ?? entry.loadStartedAt,
      last_used_at: entry.lastUsedAt,
    }));
  }

  /** Bytes held by this slot's models (loaded or loading). */
  get heldBytes(): number {
    return this.#models.entries().reduce((total, entry) => total + entry.bytes, 0);
  }

  /**
   * Stops claiming, lets active jobs finish for up to `drainMs`, then aborts the rest and
   * releases them to their lanes without spending an attempt. Then closes the lane
   * workers and disposes the models. Idempotent; the Redis connection stays open.
   */
  close(drainMs = 0): Promise<void> {
    this.#closed ??= this.#close(drainMs);
    return this.#closed;
  }

  async #close(drainMs: number): Promise<void> {
    this.#stopping = true;
    this.#draining = true;
    if (this.#sweep) clearInterval(this.#sweep);
    this.#wakeUp();
    this.#markers.close();
    try {
      await this.#loop;
    } catch (error) {
      this.#log.error({ err: error }, "claim loop failed");
    }
    if (this.#running.size > 0) {
      this.#log.info({ jobs: this.#active.size, drainMs }, "draining active jobs");
      const drained = await waitAll(this.#running, drainMs);
      if (!drained) {
        this.#log.warn({ jobs: [...this.#active.keys()] }, "drain time is up; releasing the remaining jobs");
        const lanes = [...new Set([...this.#active.values()].map((active) => active.lane))];
        for (const active of this.#active.values()) active.controller.abort("drain");
        await Promise.allSettled([...this.#running]);
        // The released jobs wait in their lanes: slots without those models loaded see them.
        await this.#lanes
          .sync(lanes, this.#o.now())
          .catch((error: unknown) => this.#log.warn({ err: error }, "syncing the released jobs' lanes failed"));
      }
    }
    await this.#keeper.close();
    await this.#usage.close();
    await this.#gate.close();
    await this.#workers.close();
    await this.#models.unloadAll("shutdown");
  }

  async #run(): Promise<void> {
    let idleMs = this.#o.idleMinMs;
    while (!this.#stopping) {
      let claimed = false;
      try {
        claimed = await this.#round();
      } catch (error) {
        this.#log.warn({ err: error }, "claim round failed");
      }
      if (this.#stopping) break;
      if (claimed) {
        idleMs = this.#o.idleMinMs;
        continue;
      }
      if (this.#waitReason === "no-work") {
        await this.#waitForWork();
        idleMs = this.#o.idleMinMs;
        continue;
      }
      const woken = await this.#sleep(idleMs);
      idleMs = woken ? this.#o.idleMinMs : Math.min(idleMs * 2, this.#o.idleMaxMs);
    }
  }

  /** One look at the lanes (or a claim from the lane a fresh look chose); true when a job was claimed. */
  async #round(): Promise<boolean> {
    const { now, slot, probe, swapAfterMs } = this.#o;
    const at = now();
    this.#waitReason = null;
    const fastModel = this.#cadence.fastModel;
    const fastEntry = fastModel === null ? undefined : this.#models.get(fastModel);
    const step = this.#cadence.next({
      now: at,
      free: fastEntry?.handle ? fastEntry.model.sequences - fastEntry.busy : null,
    });
    if (step.kind === "wait") return this.#decided(step);
    if (step.kind === "claim") {
      // Fair claim picks the jobs, then every claim of the batch goes in one pipelined round
      // trip (their prompts then go to llama.cpp in one batch).
      // No more claims than the lane then has ready: a lone job costs no empty claim.
      const { ready } = await this.#fair.releaseForClaim(step.lane, step.count, at);
      const count = Math.min(step.count, ready);
      const claimed = await Promise.all(Array.from({ length: count }, () => this.#claim(step.lane, fastEntry!)));
      const after = this.#cadence.claimed(claimed.filter(Boolean).length);
      if (after.kind === "claimed") return true;
      if (after.kind === "wait") return this.#decided(after);
    }
    await this.#catalog.refresh(at);
    // The markers an idle loop blocks on: every lane of the catalog (no read).
    this.#known = this.#catalog.lanes();
    // The lanes read: this slot's loaded models' first; a few of those waiting longest
    // only when no loaded lane has work, or one of them may be starved (rule 3).
    const { loaded, others, starved, othersReady } = this.#lanesToRead(await this.#lanes.withJobs(), at);
    await this.#models.unloadExpired(at);

    let snapshots = await this.#lanes.read(loaded, at);
    if (starved || !snapshots.some((snapshot) => snapshot.waiting > 0))
      snapshots = snapshots.concat(await this.#lanes.read(others, at));
    // A lane read with nothing ready is scored again (or leaves, holding no job at all).
    const idle = snapshots.filter((snapshot) => snapshot.waiting === 0).map((snapshot) => snapshot.lane);
    if (idle.length > 0)
      this.#lanes.sync(idle, at).catch((error: unknown) => this.#log.warn({ err: error }, "syncing idle lanes failed"));
    const lanes: LaneView[] = [];
    for (const snapshot of snapshots) {
      const model = this.#catalog.byLane(snapshot.lane);
      if (!model || snapshot.waiting === 0) continue;
      lanes.push({
        lane: snapshot.lane,
        model: model.id,
        waiting: snapshot.waiting,
        headPriority: snapshot.headPriority,
        headTimestamp: snapshot.headTimestamp,
        requirementBytes: requirementOn(slot.kind, model),
      });
    }
    if (lanes.length === 0) return this.#decided({ kind: "wait", reason: "no-work" });

    const reading = await probe.read();
    this.#totalBytes = reading.totalBytes;
    const decision = decideClaim({
      lanes,
      loaded: this.#models.views(),
      liveFreeBytes: reading.freeBytes,
      reserveBytes: probe.reserveBytes(reading.totalBytes),
      blocked: this.#models.blocked(at),
      canLoad: !this.#models.loading,
      now: at,
      swapAfterMs,
    });
    if (decision.kind === "wait") return this.#decided(decision);

    if (decision.kind === "run") {
      const entry = this.#models.get(decision.model);
      if (!entry) return false;
      if (entry.handle) {
        // Other lanes with work: read at this look, or known from their clocks when not read.
        const othersWaiting = othersReady || lanes.some((lane) => lane.lane !== decision.lane);
        this.#cadence.looked({ now: at, lane: decision.lane, model: decision.model, othersWaiting });
      }
      if (!(await this.#releaseOne(decision.lane, at))) return false;
      return this.#claim(decision.lane, entry);
    }

    for (const model of decision.evict) {
      const entry = this.#models.get(model);
      if (entry && entry.busy === 0) await this.#models.unload(entry, `making room for ${decision.model}`);
    }
    const model = this.#catalog.byLane(decision.lane)!;
    if (!(await this.#releaseOne(decision.lane, at))) return false;
    return this.#claim(decision.lane, null, () => this.#models.load(model, requirementOn(slot.kind, model)));
  }

  /**
   * Which lanes a full look reads, from the lanes that hold jobs (longest waiting first):
   * - `loaded`: the lanes of the models loaded here, whatever their state. When one of them
   *   has work, rule 1 of the policy runs it, and no other lane needs reading…
   * - …unless `starved`: a lane this slot could run has waited past `swapAfterMs` since it
   *   was last served (its clock in the set), so rule 3 may swap to it;
   * - `others`: `lookLanes` lanes with a job ready whose model could fit this slot's device
   *   (its total memory at the last reading), drawn at random from the 4 × `lookLanes` that
   *   waited longest. The draw keeps slots that look at once from all reading, and racing
   *   for, the same few lanes; a lane that waits moves up as others are served (each
   *   release sets a lane's clock to now) until slots that can run it draw it.
   * So a look reads a bounded number of lanes, whatever the size of the catalog or the
   * number of lanes with work, and only the loaded ones while they have work.
   */
  #lanesToRead(
    withJobs: readonly LaneWithJobs[],
    now: number,
  ): { loaded: string[]; others: string[]; starved: boolean; othersReady: boolean } {
    const here = new Set(this.#models.entries().map((entry) => laneName(entry.model.id)));
    const loaded: string[] = [];
    const window: string[] = [];
    let starved = false;
    const { lookLanes, slot, swapAfterMs } = this.#o;
    for (const { lane, waitingSince } of withJobs) {
      const model = this.#catalog.byLane(lane);
      if (!model) continue;
      if (here.has(lane)) loaded.push(lane);
      else if (
        waitingSince < NOTHING_HELD &&
        (this.#totalBytes === null || requirementOn(slot.kind, model) <= this.#totalBytes)
      ) {
        if (window.length < 4 * lookLanes) window.push(lane);
        if (now - waitingSince >= swapAfterMs) starved = true;
      }
    }
    // A partial Fisher–Yates shuffle: `lookLanes` of the window, each equally likely. The
    // longest waiting of the starved lanes is always among them.
    const others: string[] = [];
    const othersReady = window.length > 0;
    if (starved && window.length > 0) others.push(window.shift()!);
    const draw = Math.min(lookLanes - others.length, window.length);
    for (let i = 0; i < draw; i++) {
      const j = i + Math.floor(Math.random() * (window.length - i));
      [window[i], window[j]] = [window[j]!, window[i]!];
      others.push(window[i]!);
    }
    return { loaded, others, starved, othersReady };
  }

  /**
   * Releases the lane's next held job (fair claim) before a claim; false, with nothing to
   * claim, when the lane then has no job ready (other slots took them, or the entries were
   * of cancelled jobs): the loop waits for the next marker like an empty lane.
   */
  async #releaseOne(lane: string, at: number): Promise<boolean> {
    const { ready } = await this.#fair.releaseForClaim(lane, 1, at);
    if (ready > 0) return true;
    this.#waitReason = "no-work";
    return false;
  }

  #decided(decision: ClaimDecision): boolean {
    this.#waitReason = decision.kind === "wait" ? decision.reason : null;
    if (decision.kind === "wait" && this.#lastDecision !== "wait" && decision.reason !== "no-work")
      this.#log.debug({ reason: decision.reason }, "waiting");
    this.#lastDecision = decision.kind;
    return false;
  }

  /** Claims the lane's next job for `entry`, or for the model `load()` starts loading once a job is in hand. */
  async #claim(lane: string, entry: LoadedEntry | null, load?: () => LoadedEntry): Promise<boolean> {
    const token = `${this.#o.tokenPrefix}${++this.#tokens}`;
    const job = await this.#workers.next(lane, token);
    if (!job?.id) {
      // Another slot took it first: wait for the next marker like an empty lane.
      this.#waitReason = "no-work";
      return false;
    }
    if (this.#stopping) {
      await this.#handBack(job, token);
      return false;
    }
    const target = entry ?? load!();
    target.busy += 1;
    this.#o.metrics.setBusy(this.#models.busySequences);
    this.#lastDecision = "run";
    this.#start(job, token, lane, target);
    return true;
  }

  /** Closed while fetching: hands the job straight back to its lane, which slots then see as waiting. */
  async #handBack(job: LaneJob, token: string): Promise<void> {
    await job.moveToWait(token).catch((error: unknown) => this.#log.warn({ err: error }, "could not hand a job back"));
    await this.#lanes
      .sync([job.queueName], this.#o.now())
      .catch((error: unknown) => this.#log.warn({ err: error }, "syncing a lane failed"));
  }

  /**
   * Runs a claimed job on one of `target`'s sequences (already counted in `target.busy`).
   * The sequence is held until the engine is done with the job, not until its result is
   * written. Then either it is freed, and the next claim overlaps this job's final writes,
   * or, while a fresh look at the lanes still says to run this lane, it stays with the job
   * and takes the lane's next job in the call that completes this one (one round trip
   * instead of two, and no drained check): see {@link ActiveJob.onGenerated}.
   */
  #start(job: LaneJob, token: string, lane: string, target: LoadedEntry): void {
    let holding = true;
    const freeSequence = () => {
      if (!holding) return;
      holding = false;
      target.busy -= 1;
      target.lastUsedAt = this.#o.now();
      this.#o.metrics.setBusy(this.#models.busySequences);
      this.#wakeUp();
    };
    const active: ActiveJob = {
      job,
      token,
      lane,
      model: target.model.id,
      controller: new AbortController(),
      claimedAt: this.#o.now(),
      onGenerated: (succeeded) => {
        if (succeeded && this.#mayTakeNext(lane, target)) {
          // Fair claim releases the next job now, on the same connection just ahead of the
          // fetch-next completion that takes it (Redis runs them in that order).
          this.#fair
            .release(lane, 1, this.#o.now())
            .catch((error: unknown) => this.#log.warn({ err: error, lane }, "fair release failed"));
          return true;
        }
        freeSequence();
        return false;
      },
      onNext: (completion) => {
        if (!holding) return;
        const next = this.#workers.fromCompletion(lane, completion, token);
        if (next?.id && this.#stopping) {
          void this.#handBack(next, token);
          return;
        }
        if (!next?.id) {
          // The call went through and the lane had nothing ready.
          if (completion !== undefined) this.#cadence.foundEmpty(lane);
          return;
        }
        // The sequence goes on to the next job (still counted busy): this one no longer holds it.
        holding = false;
        target.lastUsedAt = this.#o.now();
        this.#start(next, token, lane, target);
      },
    };
    this.#active.set(job.id!, active);
    // A claimed OpenAI job whose scheduler's lease already ran out (it died while the job
    // was queued) is cancelled now, not at the next sweep: nobody listens to it.
    if (job.data.source === "openai" && this.#o.leases) this.#checkLease(job);
    const running = this.#runner
      .run(active, () => this.#models.ready(target))
      .finally(() => {
        this.#active.delete(job.id!);
        this.#running.delete(running);
        // Wakes the loop when the sequence was still held (freeing it earlier woke it then).
        freeSequence();
      });
    this.#running.add(running);
  }

  /** Whether a sequence that just finished a job on `lane` takes that lane's next job (cadence rule 8). */
  #mayTakeNext(lane: string, target: LoadedEntry): boolean {
    const model = target.model.id;
    return (
      !this.#stopping &&
      this.#cadence.mayTakeNext({
        now: this.#o.now(),
        lane,
        model,
        modelLoaded: this.#models.get(model) === target && target.handle !== null,
      })
    );
  }

  /** No lane has work: blocks until a lane's marker says a job came, the loop is woken, or `idleMaxMs`. */
  async #waitForWork(): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return;
    }
    const woken = new Promise<void>((done) => {
      this.#wake = () => {
        this.#wake = null;
        done();
      };
    });
    // One continuation per BZPOPMIN, however many waits share it: a marker popped after the
    // loop stopped waiting (woken otherwise) still wakes the next wait, which a new
    // BZPOPMIN would not, and wakes it once.
    this.#markerWait ??= this.#markers.wait(this.#known, this.#o.idleMaxMs).then((lane) => {
      this.#markerWait = null;
      this.#cadence.markerPopped(lane);
      if (lane !== null) this.#wakeUp();
    });
    await Promise.race([woken, this.#markerWait]);
    this.#wake = null;
  }

  #sleep(ms: number): Promise<boolean> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((done) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        done(false);
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        done(true);
      };
    });
  }

  #wakeUp(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }
}

/** Resolves true when every promise in the (changing) set has settled, false after `ms`. */
async function waitAll(set: Set<Promise<void>>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((done) => {
    timer = setTimeout(() => done(false), ms);
  });
  try {
    while (set.size > 0) {
      const settled = await Promise.race([Promise.allSettled([...set]).then(() => true as const), timeout]);
      if (!settled) return false;
    }
    return true;
  } finally {
    clearTimeout(timer);
  }
}
