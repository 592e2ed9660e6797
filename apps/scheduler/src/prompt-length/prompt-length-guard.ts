import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { LlamaLogLevel } from "node-llama-cpp";
import type { Logger } from "pino";
import { acquireLlama, type LlamaLease } from "@corral/llama";
import { InvalidRequestError, type CatalogModel, type JobChatMessage, type JobPayload } from "@corral/shared";
import { ModelTokenizer } from "./model-tokenizer.js";

export interface PromptLengthGuardOptions {
  /** Folder the catalog's `file` names are relative to. */
  modelsDir: string;
  logger: Logger;
  /**
   * Loads the vocabulary of the GGUF at `path`.
   * @defaultValue {@link ModelTokenizer.load} on the process's CPU llama.cpp runtime
   */
  loadTokenizer?: (path: string) => Promise<ModelTokenizer>;
}

/** What the guard reads of a job: its kind, input and `max_tokens` (and, for chats, what shapes the prompt). */
export type PromptJob = Pick<
  JobPayload,
  "kind" | "prompt" | "messages" | "max_tokens" | "tools" | "reasoning_budget" | "response_format"
>;

interface Entry {
  file: string;
  tokenizer: Promise<ModelTokenizer | null>;
}

/**
 * Refuses at submit, with a 400 `context_length_exceeded`, a completion or chat job whose
 * prompt cannot fit its model's context, counted as the worker counts it (its chat
 * template included). The worker keeps one cell of each sequence free and generates at
 * most `context - 1 - prompt` tokens, so a job passes when
 * `prompt + max_tokens ≤ context_size - 1` (the default `max_tokens` is only cut to the
 * room left, as the worker does). Embedding jobs are left to the worker.
 *
 * One vocabulary per model (node-llama-cpp `vocabOnly`: no weights), loaded on the
 * model's first job and disposed when the catalog drops or changes the model. Cheap
 * first: for SentencePiece and BPE vocabularies, whose tokens spell the text back, a
 * prompt needs at least `bytes / max bytes per token` tokens, so one with more bytes than
 * the context allows is refused without tokenizing (tokenizing is synchronous and costs
 * about 1 µs per byte). A vocabulary that cannot be loaded (a file llama.cpp rejects)
 * turns the check off for that model, logged once; the worker still refuses such prompts.
 */
export class PromptLengthGuard {
  readonly #modelsDir: string;
  readonly #log: Logger;
  readonly #load: (path: string) => Promise<ModelTokenizer>;
  readonly #entries = new Map<string, Entry>();
  #lease: Promise<LlamaLease> | null = null;
  #closed = false;

  constructor(options: PromptLengthGuardOptions) {
    this.#modelsDir = options.modelsDir;
    this.#log = options.logger.child({ component: "prompt-length" });
    this.#load = options.loadTokenizer ?? ((path) => this.#loadOnCpu(path));
  }

  /**
   * Resolves with the prompt's tokens when `job`'s prompt fits `model`'s context (null when
   * it was not counted: not a completion or chat, or the model's vocabulary is unknown).
   * @throws InvalidRequestError (400, `context_length_exceeded`) naming `prompt` or `messages`.
   */
  async check(model: CatalogModel, job: PromptJob, maxTokensGiven: boolean): Promise<number | null> {
    if (job.kind !== "completion" && job.kind !== "chat") return null;
    const tokenizer = await this.#tokenizer(model);
    if (!tokenizer) return null;
    const field = job.kind === "chat" ? "messages" : "prompt";
    const usable = model.context_size - 1;
    const needed = (tokens: number): number => tokens + (maxTokensGiven ? job.max_tokens : 1);

    const floor = lowerBound(tokenizer, job);
    if (floor !== null && needed(floor) > usable)
      throw tooLong(model, field, floor, job.max_tokens, maxTokensGiven, true);
    // Tokenizing blocks the event loop (about 1 µs per byte): before a long prompt, let
    // waiting I/O run, so a batch chunk of long lines does not hold the server for seconds.
    if (promptBytes(job) > YIELD_BEFORE_BYTES) await nextTurn();
    // A chat with native tools also keeps room for the call syntax the template writes (counted with the prompt).
    const counted =
      job.kind === "chat" ? tokenizer.countChat(job) : { prompt: tokenizer.countPrompt(job.prompt ?? ""), reserved: 0 };
    const tokens = counted.prompt + counted.reserved;
    if (needed(tokens) > usable) throw tooLong(model, field, tokens, job.max_tokens, maxTokensGiven, false);
    return counted.prompt;
  }

  /** Disposes the vocabularies of models that are no longer in `models` (or whose file changed). */
  async prune(models: readonly CatalogModel[]): Promise<void> {
    const files = new Map(models.map((m) => [m.id, m.file]));
    for (const [id, entry] of [...this.#entries]) {
      if (files.get(id) === entry.file) continue;
      this.#entries.delete(id);
      await disposeQuietly(entry, this.#log);
    }
  }

  /** Models whose vocabulary is loaded or loading. */
  get loaded(): string[] {
    return [...this.#entries.keys()];
  }

  /** Disposes every vocabulary. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    for (const entry of entries) await disposeQuietly(entry, this.#log);
    const lease = this.#lease;
    this.#lease = null;
    try {
      (await lease)?.release();
    } catch {
      // No runtime was created: nothing to release.
    }
  }

  #tokenizer(model: CatalogModel): Promise<ModelTokenizer | null> {
    if (this.#closed) return Promise.resolve(null);
    let entry = this.#entries.get(model.id);
    if (entry && entry.file !== model.file) {
      this.#entries.delete(model.id);
      void disposeQuietly(entry, this.#log);
      entry = undefined;
    }
    if (!entry) {
      const path = join(this.#modelsDir, model.file);
      const tokenizer = this.#load(path).catch((error: unknown) => {
        this.#log.warn(
          { err: error, model: model.id, path },
          "cannot load the model's vocabulary; its prompts are not counted at submit (the worker still refuses those too long)",
        );
        return null;
      });
      entry = { file: model.file, tokenizer };
      this.#entries.set(model.id, entry);
    }
    return entry.tokenizer;
  }

  async #loadOnCpu(path: string): Promise<ModelTokenizer> {
    this.#lease ??= acquireLlama(false, (level, message) => {
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) this.#log.debug({ llama: message });
    });
    return ModelTokenizer.load((await this.#lease).llama, path);
  }
}

/** Prompts longer than this (UTF-8 bytes) are tokenized on a later event-loop turn. */
const YIELD_BEFORE_BYTES = 16_384;

function promptBytes(job: PromptJob): number {
  if (job.kind === "completion") return Buffer.byteLength(job.prompt ?? "");
  let bytes = 0;
  for (const message of job.messages ?? []) bytes += Buffer.byteLength(message.content);
  return bytes;
}

/**
 * Fewest tokens the prompt can take, from its UTF-8 length alone, or null when the
 * vocabulary gives no such bound. Each token spells at most `maxTokenBytes` bytes of the
 * text; one byte of slack per text piece covers the leading space a tokenizer may drop.
 * For a chat, the bytes are those of the text the chat template makes (what is tokenized).
 */
function lowerBound(tokenizer: ModelTokenizer, job: PromptJob): number | null {
  const max = tokenizer.maxTokenBytes;
  if (max === null) return null;
  if (job.kind === "completion") return Math.ceil(Math.max(0, Buffer.byteLength(job.prompt ?? "") - 1) / max);
  const bytes = chatBytes(job.messages ?? []);
  return Math.ceil(Math.max(0, bytes.bytes - bytes.pieces) / max);
}

/**
 * UTF-8 bytes of the messages' contents after trimming (chat templates trim them, and may
 * leave some out entirely: only the last user message is counted, which every template
 * keeps), and the number of pieces that makes.
 */
function chatBytes(messages: readonly JobChatMessage[]): { bytes: number; pieces: number } {
  const last = messages.findLast((m) => m.role === "user");
  return last ? { bytes: Buffer.byteLength(last.content.trim()), pieces: 1 } : { bytes: 0, pieces: 0 };
}

function tooLong(
  model: CatalogModel,
  field: "prompt" | "messages",
  tokens: number,
  maxTokens: number,
  maxTokensGiven: boolean,
  atLeast: boolean,
): InvalidRequestError {
  const what = field === "messages" ? "the messages" : "the prompt";
  const count = `${atLeast ? "at least " : ""}${tokens} tokens`;
  const message = maxTokensGiven
    ? `This model's maximum context length is ${model.context_size} tokens (one is kept free), but you requested ${atLeast ? "at least " : ""}${tokens + maxTokens} tokens (${count} in ${what}, ${maxTokens} for max_tokens). Reduce the length of ${what} or max_tokens.`
    : `This model's maximum context length is ${model.context_size} tokens (one is kept free), but ${what} alone take ${count}, which leaves no room to generate. Shorten ${what}.`;
  return new InvalidRequestError(message, field, "context_length_exceeded");
}

async function disposeQuietly(entry: Entry, log: Logger): Promise<void> {
  try {
    await (await entry.tokenizer)?.dispose();
  } catch (error) {
    log.debug({ err: error }, "disposing a vocabulary failed");
  }
}
