import { performance } from "node:perf_hooks";
import type { FinishReason, JobPayload, TokenLogprob } from "@corral/shared";
import { ChatPlanner, PromptCounter, parseToolCallsText, type ChatPlan } from "@corral/llama";
import {
  LlamaCompletion,
  TokenBias,
  type ChatWrapper,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import type { Logger } from "pino";
import { generateChat, type ChatGeneration } from "./chat-generation.js";
import {
  InvalidJobError,
  InvalidLogitBiasError,
  ModelDisposedError,
  OutOfMemoryError,
  PromptTooLongError,
  errorMessage,
  isOutOfMemory,
} from "./errors.js";
import type { GrammarCache } from "./grammar-cache.js";
import { LimitWatch, type JobLimits } from "./limit-watch.js";
import { PrefixReuse } from "./prefix-reuse.js";
import { SequencePool } from "./sequence-pool.js";
import { TokenLogprobs } from "./token-logprobs.js";
import type { EngineResult, RunOptions } from "./types.js";

/** What `Engine.load` hands a new LoadedModel. */
export interface LoadedModelInit {
  modelId: string;
  model: LlamaModel;
  context: LlamaContext;
  chatWrapper: ChatWrapper;
  grammars: GrammarCache;
  threads: number;
  loadMs: number;
  /** Wall time and slowest token rate of each job; null: none. */
  limits: JobLimits | null;
  /** Keep each sequence's tokens after a job and reuse the prompt prefix they share with the next (see PrefixReuse). */
  prefixReuse: boolean;
  logger: Logger;
  /** Called once when the model is disposed (the engine forgets it). */
  onDispose: (model: LoadedModel) => void;
}

/** A job's input as the model takes it: a completion's tokens or a chat's plan (history, template, tools). */
type PreparedInput = { kind: "completion"; tokens: Token[] } | { kind: "chat"; plan: ChatPlan };

/** One job's generation, whichever LlamaCompletion/LlamaChat ran it (thoughts: chats on reasoning models). */
type Generation = Pick<ChatGeneration, "response" | "stopReason"> & Partial<ChatGeneration>;

/**
 * A model loaded with one context of `sequences` sequences. `run` can be called
 * concurrently: each job takes a free sequence (or waits, first come first served),
 * generates, and gives it back, cleared or, with prefix reuse, holding its tokens (see PrefixReuse).
 */
export class LoadedModel {
  readonly modelId: string;
  readonly sequences: number;
  /** Milliseconds the load took: file check, weights, and the context. */
  readonly loadMs: number;
  /** Real context size of one sequence in tokens (the requested size rounded up to 256). */
  readonly contextSize: number;
  /** Layers offloaded to the GPU (0 on the CPU). */
  readonly gpuLayers: number;
  /** Chat template in use: the GGUF's, or "General" when it has none. */
  readonly chatWrapperName: string;
  /**
   * The chat template has thought segments (DeepSeek R1 and the like): chat results carry
   * the thoughts in `reasoning`, apart from the answer, and `usage.reasoning_tokens`.
   */
  readonly reasoning: boolean;
  /**
   * The chat template has its own function-call syntax: chat jobs with tools call them in
   * it (node-llama-cpp functions); other models take the template-agnostic path.
   */
  readonly nativeTools: boolean;
  /** llama.cpp threads of its contexts (configured, or chosen by the engine's calibration). */
  readonly threads: number;

  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #chats: ChatPlanner;
  readonly #grammars: GrammarCache;
  readonly #threads: number;
  readonly #limits: JobLimits | null;
  readonly #log: Logger;
  readonly #pool: SequencePool<LlamaContextSequence>;
  readonly #prefixes: PrefixReuse;
  readonly #prompts: PromptCounter;
  readonly #notifyDispose: (model: LoadedModel) => void;
  #embeddingContext: Promise<LlamaEmbeddingContext> | null = null;
  #active = 0;
  #disposing: Promise<void> | null = null;

  /** @internal Use `Engine.load`. */
  constructor(init: LoadedModelInit) {
    this.modelId = init.modelId;
    this.#model = init.model;
    this.#context = init.context;
    this.#grammars = init.grammars;
    this.#threads = init.threads;
    this.threads = init.threads;
    this.#limits = init.limits;
    this.loadMs = init.loadMs;
    this.#log = init.logger;
    this.#notifyDispose = init.onDispose;
    this.contextSize = init.context.contextSize;
    this.sequences = init.context.totalSequences;
    this.gpuLayers = init.model.gpuLayers;
    this.chatWrapperName = init.chatWrapper.wrapperName;
    this.#prompts = new PromptCounter(init.model, init.chatWrapper);
    this.#chats = new ChatPlanner(init.model, init.chatWrapper, this.#prompts);
    this.reasoning = this.#chats.reasoning;
    this.nativeTools = this.#chats.nativeTools;
    const sequences: LlamaContextSequence[] = [];
    for (let i = 0; i < this.sequences; i++) sequences.push(init.context.getSequence());
    this.#pool = new SequencePool(sequences);
    this.#prefixes = new PrefixReuse({
      enabled: init.prefixReuse,
      model: init.model,
      sequences: this.sequences,
      logger: init.logger,
    });
  }

  /** Sequences running a job right now. */
  get busySequences(): number {
    return this.#pool.busy;
  }

  /** Jobs waiting for a free sequence. */
  get waitingJobs(): number {
    return this.#pool.waiting;
  }

  /** No job is running, waiting, or embedding: the model can be unloaded. */
  get idle(): boolean {
    return this.#active === 0;
  }

  get disposed(): boolean {
    return this.#disposing !== null;
  }

  /**
   * Runs one job on a free context sequence, waiting for one if all are busy. Completion
   * and chat jobs generate text; embedding jobs return `embeddings` (no sequence needed).
   * Throws PromptTooLongError, UnsupportedSchemaError, InvalidJobError (unrecoverable),
   * ModelDisposedError, or whatever llama.cpp throws.
   */
  async run(job: JobPayload, options: RunOptions = {}): Promise<EngineResult> {
    if (this.#disposing) throw new ModelDisposedError(this.modelId);
    const { signal } = options;
    this.#active++;
    try {
      if (job.kind === "embedding") return await this.#runEmbedding(job);
      const input = this.#prepareInput(job);
      const tokenBias = this.#tokenBias(job);
      const grammar = await this.#grammars.get(input.kind === "chat" ? input.plan.responseFormat : job.response_format);
      if (signal?.aborted) return cancelledBeforeStart();
      const prompt = this.#prefixes.promptOf(
        this.#prompts,
        input.kind === "chat"
          ? { kind: "chat", history: input.plan.history, functions: input.plan.functions?.functions }
          : input,
      );
      let sequence: LlamaContextSequence;
      try {
        sequence = await this.#pool.acquire(signal, this.#prefixes.preference(prompt));
      } catch (error) {
        if (signal?.aborted) return cancelledBeforeStart();
        throw error;
      }
      let clean = false;
      try {
        // Empty, or holding the prefix it shares with the prompt (prefix reuse).
        await this.#prefixes.prepare(sequence, prompt);
        const result = await this.#generate(sequence, job, input, { grammar, tokenBias }, options);
        // A cancelled job may have stopped mid-evaluation: its sequence is not reused.
        clean = result.finish_reason !== "cancelled";
        return result;
      } finally {
        await this.#prefixes.release(sequence, clean);
        this.#pool.release(sequence);
      }
    } finally {
      this.#active--;
    }
  }

  /** Embeds each input with the model (lazily creating an embedding context). */
  async embed(inputs: readonly string[]): Promise<number[][]> {
    if (this.#disposing) throw new ModelDisposedError(this.modelId);
    this.#active++;
    try {
      return (await this.#embedWithCounts(inputs)).vectors;
    } finally {
      this.#active--;
    }
  }

  /**
   * Frees the context and the model. Idempotent. It neither waits for nor aborts running
   * jobs (the caller makes sure the model is idle); jobs still waiting for a sequence are
   * rejected with ModelDisposedError.
   */
  dispose(): Promise<void> {
    this.#disposing ??= this.#disposeOnce();
    return this.#disposing;
  }

  async #disposeOnce(): Promise<void> {
    this.#pool.close(() => new ModelDisposedError(this.modelId));
    if (this.#active > 0) this.#log.warn({ active: this.#active }, "disposing a model with jobs still running");
    if (this.#embeddingContext) {
      try {
        await (await this.#embeddingContext).dispose();
      } catch (error) {
        this.#log.debug({ err: error }, "embedding context was not created or failed to dispose");
      }
    }
    try {
      await this.#context.dispose();
    } catch (error) {
      this.#log.warn({ err: error }, "context dispose failed");
    }
    try {
      await this.#model.dispose();
    } catch (error) {
      this.#log.warn({ err: error }, "model dispose failed");
    }
    this.#notifyDispose(this);
    this.#log.info("model unloaded");
  }

  #prepareInput(job: JobPayload): PreparedInput {
    if (job.kind === "completion") {
      if (job.prompt === undefined) throw new InvalidJobError(job.id, "a completion job needs `prompt`", "prompt");
      // As LlamaCompletion tokenizes a string: it prepends the BOS token itself.
      const tokens = this.#prompts.tokenizePrompt(job.prompt);
      if (tokens.length === 0 && !this.#prompts.prependsBeginningToken) {
        throw new InvalidJobError(job.id, "the prompt is empty", "prompt");
      }
      return { kind: "completion", tokens };
    }
    if (!job.messages?.length) throw new InvalidJobError(job.id, "a chat job needs `messages`", "messages");
    return { kind: "chat", plan: this.#chats.plan(job) };
  }

  async #generate(
    sequence: LlamaContextSequence,
    job: JobPayload,
    input: PreparedInput,
    constraints: { grammar: LlamaGrammar | undefined; tokenBias: TokenBias | undefined },
    options: RunOptions,
  ): Promise<EngineResult> {
    const { grammar, tokenBias } = constraints;
    const { signal, onText, onReasoning } = options;
    const plan = input.kind === "chat" ? input.plan : null;
    const thoughtBudget = plan?.thoughtBudget ?? null;
    const started = performance.now();
    // The scheduler refuses at submit with the same count (@corral/llama's PromptCounter).
    const promptTokens =
      input.kind === "chat" ? input.plan.promptTokens : this.#prompts.countPromptTokens(input.tokens);
    // llama.cpp keeps the last cell free (node-llama-cpp shifts the context at contextSize - 1),
    // and LlamaChat would silently drop history rather than overflow: refuse instead.
    const reserved = input.kind === "chat" ? input.plan.reservedTokens : 0;
    const room = this.contextSize - 1 - promptTokens - reserved;
    if (room < 1) throw new PromptTooLongError(promptTokens + reserved, this.contextSize, job.max_tokens);
    const maxTokens = Math.min(job.max_tokens, room);

    // The job's wall time and token rate are watched from here, while it holds a sequence.
    const watch = this.#limits ? new LimitWatch(this.#limits, signal) : null;
    const meterBefore = sequence.tokenMeter.getState();
    let firstTokenAt: number | null = null;
    const streamed: string[] = [];
    // node-llama-cpp detokenizes a completion's first token without the prompt before it, so
    // SentencePiece drops its leading space ("park" + "with"). Restore what the prompt implies.
    let leading: string | null = input.kind === "completion" ? null : "";
    const restoreLeading = (tokens: readonly Token[]): void => {
      if (leading !== null || input.kind !== "completion") return;
      const bare = this.#model.detokenize(tokens);
      const inContext = this.#model.detokenize(tokens, false, input.tokens);
      leading =
        inContext !== bare && inContext.endsWith(bare) ? inContext.slice(0, inContext.length - bare.length) : "";
    };
    // Jobs with logprobs record each token's probability as it is sampled (see TokenLogprobs).
    const logprobs = job.logprobs
      ? new TokenLogprobs(this.#model, job.top_logprobs ?? 0, input.kind === "completion" ? input.tokens : [])
      : null;
    const reported: TokenLogprob[] = [];
    const penalized = (job.frequency_penalty ?? 0) !== 0 || (job.presence_penalty ?? 0) !== 0;
    const sampling = {
      signal: watch?.signal ?? signal,
      stopOnAbortSignal: true,
      maxTokens,
      temperature: job.temperature,
      // With logprobs and no truncation asked for, sample from the whole distribution
      // (OpenAI's defaults, top_p 1) rather than node-llama-cpp's top-k 40 / top-p 0.95, so
      // the probabilities reported are the model's (temperature-scaled), not a truncated few.
      topP: job.top_p ?? (logprobs ? 1 : undefined),
      topK: job.top_k ?? (logprobs ? 0 : undefined),
      seed: job.seed,
      customStopTriggers: job.stop?.length ? job.stop : undefined,
      // OpenAI's penalties: each generated token's logit is lowered by frequency_penalty × its
      // count so far plus presence_penalty once, over all of the generated text. No
      // multiplicative repeat penalty (node-llama-cpp's default is 1.1 over 64 tokens).
      repeatPenalty: penalized
        ? {
            penalty: 1,
            frequencyPenalty: job.frequency_penalty ?? 0,
            presencePenalty: job.presence_penalty ?? 0,
            lastTokens: maxTokens,
            penalizeNewLine: true,
          }
        : (false as const),
      tokenBias,
      onToken: (tokens: Token[]): void => {
        firstTokenAt ??= performance.now();
        watch?.noteTokens(tokens.length);
        restoreLeading(tokens);
      },
      onTextChunk: (chunk: string): void => {
        const text = streamed.length === 0 ? `${leading ?? ""}${chunk}` : chunk;
        streamed.push(text);
        const tokens = logprobs?.take();
        if (tokens) reported.push(...tokens);
        try {
          onText?.(text, tokens);
        } catch (error) {
          this.#log.warn({ err: error, job: job.id }, "onText threw; generation goes on");
        }
      },
    };

    let generation: Generation;
    logprobs?.attach(sequence);
    try {
      generation =
        input.kind === "completion"
          ? await this.#complete(sequence, input.tokens, { ...sampling, grammar })
          : await generateChat(
              sequence,
              input.plan.chatWrapper,
              input.plan.history,
              {
                ...sampling,
                grammar,
                // A forced call streams (to a streaming job's token stream) as template-agnostic JSON.
                functions: input.plan.functions && {
                  ...input.plan.functions,
                  streamCalls: job.stream && input.plan.tools?.tools.required === true,
                },
              },
              thoughtBudget === null
                ? null
                : {
                    budget: thoughtBudget,
                    onThought: (chunk) => {
                      logprobs?.take(); // a thought's tokens are not the answer's: their logprobs are not reported
                      try {
                        onReasoning?.(chunk);
                      } catch (error) {
                        this.#log.warn({ err: error, job: job.id }, "onReasoning threw; generation goes on");
                      }
                    },
                    onDropped: () => logprobs?.take(),
                  },
            );
    } catch (error) {
      // Aborted before node-llama-cpp could return the partial text itself.
      if (watch?.exceeded && !signal?.aborted) throw watch.exceeded;
      if (!signal?.aborted) throw error;
      generation = { response: streamed.join(""), stopReason: "abort" };
    } finally {
      logprobs?.detach();
      watch?.stop();
    }
    // Over a limit (and not cancelled meanwhile): the job fails; its partial text is dropped.
    if (watch?.exceeded && !signal?.aborted) throw watch.exceeded;

    const finished = performance.now();
    const completionTokens = Math.max(
      0,
      sequence.tokenMeter.getState().usedOutputTokens - meterBefore.usedOutputTokens,
    );
    const text =
      leading && generation.response !== "" && !generation.response.startsWith(leading)
        ? `${leading}${generation.response}`
        : generation.response;
    const result: EngineResult = {
      text,
      finish_reason: finishReasonOf(generation.stopReason),
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        ...(thoughtBudget !== null
          ? { reasoning_tokens: Math.min(generation.thoughtTokens ?? 0, completionTokens) }
          : {}),
      },
      reused_prompt_tokens: this.#prefixes.reused(sequence),
      ttft_ms: firstTokenAt !== null ? firstTokenAt - started : completionTokens > 0 ? finished - started : null,
      generation_ms: finished - started,
      ...(logprobs ? { logprobs: reported } : {}),
      ...(thoughtBudget !== null ? { reasoning: generation.thoughts ?? "" } : {}),
    };
    // Native calls are LlamaChat's; a template-agnostic call is the whole reply (no content besides it).
    const tools = plan?.tools;
    const toolCalls =
      tools?.rendering === "text"
        ? parseToolCallsText(text, tools.tools)
        : generation.functionCalls?.length
          ? generation.functionCalls
          : null;
    if (toolCalls) {
      result.tool_calls = toolCalls;
      if (tools?.rendering === "text") result.text = "";
    }
    this.#log.debug(
      {
        job: job.id,
        kind: job.kind,
        finish: result.finish_reason,
        stopReason: generation.stopReason,
        usage: result.usage,
        reusedPromptTokens: result.reused_prompt_tokens,
        ttftMs: result.ttft_ms,
        generationMs: result.generation_ms,
      },
      "job generated",
    );
    return result;
  }

  /** The job's `logit_bias` as node-llama-cpp's TokenBias (logits added as they are). @throws InvalidLogitBiasError */
  #tokenBias(job: JobPayload): TokenBias | undefined {
    const entries = Object.entries(job.logit_bias ?? {});
    if (entries.length === 0) return undefined;
    const vocabularySize = this.#vocabularySize();
    const bias = new TokenBias(this.#model.tokenizer);
    for (const [key, value] of entries) {
      const token = Number(key);
      if (!Number.isInteger(token) || token < 0 || token >= vocabularySize) {
        throw new InvalidLogitBiasError(token, vocabularySize);
      }
      // -100 bans the token (as OpenAI's does in effect); EOG tokens are left alone by TokenBias.
      bias.set(token as Token, value <= -100 ? "never" : { logit: value });
    }
    return bias;
  }

  #vocabularySize(): number {
    return this.#model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
  }

  async #complete(
    sequence: LlamaContextSequence,
    tokens: Token[],
    options: Parameters<LlamaCompletion["generateCompletionWithMeta"]>[1],
  ): Promise<Generation> {
    const completion = new LlamaCompletion({ contextSequence: sequence });
    try {
      const { response, metadata } = await completion.generateCompletionWithMeta(tokens, {
        ...options,
        // Stop at the end of the context instead of silently dropping the prompt's start.
        disableContextShift: true,
        contextShiftSize: 1,
      });
      return { response, stopReason: metadata.stopReason };
    } finally {
      completion.dispose({ disposeSequence: false });
    }
  }

  async #runEmbedding(job: JobPayload): Promise<EngineResult> {
    if (!job.input?.length) throw new InvalidJobError(job.id, "an embedding job needs `input`", "input");
    const started = performance.now();
    const { vectors, tokens } = await this.#embedWithCounts(job.input);
    const finished = performance.now();
    return {
      text: "",
      finish_reason: "stop",
      usage: { prompt_tokens: tokens, completion_tokens: 0 },
      ttft_ms: null,
      generation_ms: finished - started,
      embeddings: vectors,
    };
  }

  async #embedWithCounts(inputs: readonly string[]): Promise<{ vectors: number[][]; tokens: number }> {
    const context = await this.#getEmbeddingContext();
    const vectors: number[][] = [];
    let tokens = 0;
    for (const input of inputs) {
      const length = context.calculateInputLength(input);
      if (length >= this.contextSize) throw new PromptTooLongError(length, this.contextSize, 0);
      tokens += length;
      vectors.push([...(await context.getEmbeddingFor(input)).vector]);
    }
    return { vectors, tokens };
  }

  #getEmbeddingContext(): Promise<LlamaEmbeddingContext> {
    this.#embeddingContext ??= this.#model
      .createEmbeddingContext({ contextSize: this.contextSize, threads: this.#threads })
      .catch((error: unknown) => {
        this.#embeddingContext = null;
        if (isOutOfMemory(error)) {
          throw new OutOfMemoryError(this.modelId, "embedding-context", errorMessage(error), { cause: error });
        }
        throw error;
      });
    return this.#embeddingContext;
  }
}

function finishReasonOf(stopReason: string): FinishReason {
  switch (stopReason) {
    case "abort":
      return "cancelled";
    case "maxTokens":
      return "length";
    default: // eogToken, stopGenerationTrigger, customStopTrigger, functionCalls
      return "stop";
  }
}

function cancelledBeforeStart(): EngineResult {
  return {
    text: "",
    finish_reason: "cancelled",
    usage: { prompt_tokens: 0, completion_tokens: 0 },
    ttft_ms: null,
    generation_ms: 0,
  };
}
