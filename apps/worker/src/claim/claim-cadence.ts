/**
 * How often a slot reads the lanes, and how many jobs it claims at once in between: the
 * "fast lane". Reading every lane (a full look, then `decideClaim`) costs several
 * round trips; claiming from the lane a fresh look chose costs one. The cadence holds no
 * I/O and no clock: the claim loop tells it what happened (the time, markers, claim
 * results) and does what it answers, so the rules can be tested without Redis.
 *
 * 1. **Fast lane.** When a full look decides `run` on a model that is loaded (not
 *    loading), that lane is the fast lane until `laneReadMs` after the look. Meanwhile
 *    each round claims straight from it, without reading the lanes. The cadence remembers
 *    whether other lanes had work at that look.
 * 2. **Full look.** A round makes a full look when there is no fast lane, its time is up
 *    (rule 1), a marker of another lane popped since the last round (work may have come
 *    there), or its model is no longer loaded here. A full look forgets the fast lane,
 *    the dry lane (rule 5) and the ramp (rule 4 starts again at 1).
 * 3. **Busy.** While the fast lane counts and its model has no free sequence, the round
 *    waits ("busy"); a freed sequence wakes the loop.
 * 4. **Ramp.** With a backlog, a fast round claims every free sequence at once (one
 *    pipelined round trip; their prompts go to llama.cpp in one batch). Otherwise it
 *    claims 1, then 1, 2, 4… at once while each batch comes back full, capped by the free
 *    sequences; a full batch that took every free sequence means a backlog. A batch that
 *    comes back short starts the ramp again at 1. A lone job so costs one empty claim,
 *    not one per free sequence.
 * 5. **Dry lane.** A fast-lane batch that comes back short, or a fetch-next completion
 *    on the lane that found nothing, marks the lane dry. While it is dry and no other
 *    lane had work at the last look, rounds wait for the lanes' markers ("no-work")
 *    instead of claiming: a job added there since left a marker, so a spurious wake-up
 *    costs no empty claim. Any popped marker ends the dry spell.
 * 6. **Empty batch.** A fast round whose batch took nothing waits for markers ("no-work")
 *    when no other lane had work at the last look (a job arriving anywhere adds its
 *    lane's marker); otherwise it makes a full look at once.
 * 7. **Extension.** Woken by the fast lane's own marker, when no other lane had work at
 *    the last look, a fast lane whose time is up counts for another `laneReadMs` from
 *    now, as long as the look is less than `catalogRefreshMs` old: any job added elsewhere
 *    since would have left its own marker, which the next wait sees. A lone job arriving
 *    at an idle slot is so claimed in one round trip instead of after a full look.
 * 8. **Take next.** A sequence that finished a job on a lane takes that lane's next job
 *    in the completion call (BullMQ's fetch-next) only while that lane is the fast lane
 *    and counts, no marker of another lane popped since the last round, and the job ran
 *    on the fast lane's model, still loaded here.
 */

export interface ClaimCadenceOptions {
  /** How long a full look's `run` decision counts (rule 1). */
  laneReadMs: number;
  /** The oldest a look may be and still be extended (rule 7): the catalog's refresh period. */
  catalogRefreshMs: number;
}

/** What a round does next. */
export type CadenceStep =
  /** Claim `count` jobs from `lane` at once, for its loaded model `model`; then report with {@link ClaimCadence.claimed}. */
  | { kind: "claim"; lane: string; model: string; count: number }
  /** Claim nothing this round. "no-work": wait for the lanes' markers; "busy": for a free sequence. */
  | { kind: "wait"; reason: "no-work" | "busy" }
  /** Read every lane and ask the claim policy; report a `run` on a loaded model with {@link ClaimCadence.looked}. */
  | { kind: "look" };

/** What a round does after its fast-lane batch came back. */
export type AfterClaim = { kind: "claimed" } | { kind: "wait"; reason: "no-work" } | { kind: "look" };

interface FastLane {
  lane: string;
  model: string;
  /** Until when the look counts. */
  until: number;
  lookedAt: number;
  /** Whether other lanes had work at the look. */
  othersWaiting: boolean;
}

export class ClaimCadence {
  readonly #o: ClaimCadenceOptions;
  #fast: FastLane | null = null;
  /** The lane whose marker popped since the last round, if one did. */
  #markerLane: string | null = null;
  /** The fast lane, once a batch or a fetch-next completion found it empty (rule 5). */
  #dryLane: string | null = null;
  /** Rule 4: null while the lane has a backlog; else full batches in a row since the ramp started. */
  #streak: number | null = 0;
  /** The batch in flight: from which fast lane, how many it claims out of how many free sequences, at which streak. */
  #pending: { fast: FastLane; want: number; free: number; streak: number | null } | null = null;

  constructor(options: ClaimCadenceOptions) {
    this.#o = options;
  }

  /** The fast lane's model, if there is a fast lane: the loop tells {@link next} its free sequences. */
  get fastModel(): string | null {
    return this.#fast?.model ?? null;
  }

  /**
   * A round begins. `free`: free sequences of the fast lane's model ({@link fastModel}),
   * null when it is not loaded here (or still loading).
   */
  next(input: { now: number; free: number | null }): CadenceStep {
    const { now, free } = input;
    const fast = this.#fast;
    const marker = this.#markerLane;
    const elsewhere = marker !== null && marker !== fast?.lane;
    if (
      fast !== null &&
      marker === fast.lane &&
      !fast.othersWaiting &&
      now >= fast.until &&
      now - fast.lookedAt < this.#o.catalogRefreshMs
    )
      fast.until = now + this.#o.laneReadMs; // rule 7
    if (marker !== null) this.#dryLane = null; // rule 5
    this.#markerLane = null;
    if (fast !== null && now < fast.until && !elsewhere && free !== null) {
      if (free <= 0) return { kind: "wait", reason: "busy" }; // rule 3
      if (this.#dryLane === fast.lane && !fast.othersWaiting) return { kind: "wait", reason: "no-work" }; // rule 5
      const streak = this.#streak;
      const want = streak === null ? free : Math.min(free, 2 ** Math.max(0, streak - 1)); // rule 4
      this.#pending = { fast, want, free, streak };
      return { kind: "claim", lane: fast.lane, model: fast.model, count: want };
    }
    return this.#look(); // rule 2
  }

  /** The fast-lane batch {@link next} asked for came back with `got` jobs. */
  claimed(got: number): AfterClaim {
    const pending = this.#pending;
    this.#pending = null;
    if (pending === null) return this.#look();
    const { fast, want, free, streak } = pending;
    if (got < want) {
      this.#dryLane = fast.lane; // rule 5
      this.#streak = 0; // rule 4
    } else this.#streak = streak === null || want === free ? null : streak + 1;
    if (got > 0) return { kind: "claimed" };
    if (!fast.othersWaiting) return { kind: "wait", reason: "no-work" }; // rule 6
    return this.#look();
  }

  /** A full look decided `run` on `lane`, whose model `model` is loaded here (rule 1). */
  looked(look: { now: number; lane: string; model: string; othersWaiting: boolean }): void {
    this.#fast = {
      lane: look.lane,
      model: look.model,
      until: look.now + this.#o.laneReadMs,
      lookedAt: look.now,
      othersWaiting: look.othersWaiting,
    };
  }

  /** A wait on the lanes' markers ended: with the lane whose marker popped, or null (timed out). */
  markerPopped(lane: string | null): void {
    this.#markerLane = lane;
  }

  /** A fetch-next completion on `lane` went through and found nothing ready there (rule 5). */
  foundEmpty(lane: string): void {
    this.#dryLane = lane;
  }

  /**
   * Rule 8: whether a sequence that just finished a job on `lane`, run on `model`, takes
   * the lane's next job in the completion call. `modelLoaded`: that job's model is still
   * the one loaded here (not unloaded, or unloaded and loaded again).
   */
  mayTakeNext(input: { now: number; lane: string; model: string; modelLoaded: boolean }): boolean {
    const fast = this.#fast;
    return (
      fast !== null &&
      fast.lane === input.lane &&
      input.now < fast.until &&
      (this.#markerLane === null || this.#markerLane === input.lane) &&
      fast.model === input.model &&
      input.modelLoaded
    );
  }

  #look(): { kind: "look" } {
    this.#fast = null;
    this.#dryLane = null;
    this.#streak = 0;
    this.#pending = null;
    return { kind: "look" };
  }
}
