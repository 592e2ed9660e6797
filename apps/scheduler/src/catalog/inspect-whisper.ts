import { open, stat } from "node:fs/promises";

/** whisper.cpp's ggml model magic, `ggml` read as a little-endian uint32 (`lmgg` in the file). */
export const WHISPER_MAGIC = 0x67676d6c;

/** The hyper-parameters at the head of a whisper.cpp ggml `.bin` model. */
export interface WhisperHparams {
  nVocab: number;
  nAudioCtx: number;
  nAudioState: number;
  nAudioHead: number;
  nAudioLayer: number;
  nTextCtx: number;
  nTextState: number;
  nTextHead: number;
  nTextLayer: number;
  nMels: number;
  /** whisper.cpp's weight type: 0 f32, 1 f16, 2 q4_0, 3 q4_1, 7 q8_0, 8 q5_0, 9 q5_1 (the quantization version × 1000 taken off). */
  ftype: number;
}

/** What the catalog takes from a whisper.cpp model's header. */
export interface WhisperSummary {
  fileSizeBytes: number;
  /** File modification time, ms since the epoch. */
  modifiedAt: number;
  hparams: WhisperHparams;
  /** Parameters of the model the header describes, counted from its shapes. */
  parameters: number;
  /** Whether the model transcribes other languages than English (a vocabulary past 51,864 tokens). */
  multilingual: boolean;
  /** Memory to run it, bytes: see {@link estimateWhisperMemory}. */
  memoryBytes: number;
}

/** A file that could not be read as a whisper.cpp model. */
export class InvalidWhisperModelError extends Error {
  override readonly name = "InvalidWhisperModelError";
  readonly file: string;
  /** Why, e.g. `bad magic 0x46554747`. */
  readonly reason: string;
  constructor(file: string, reason: string) {
    super(`${file} is not a usable whisper.cpp model: ${reason}`);
    this.file = file;
    this.reason = reason;
  }
}

/** The header, mel filters and vocabulary of the largest Whisper model fit well within this. */
const MAX_HEADER_BYTES = 8 * 1024 * 1024;
/** English-only Whisper vocabularies have 51,864 tokens; multilingual ones more. */
const ENGLISH_VOCAB = 51_864;
const GGML_QNT_VERSION_FACTOR = 1000;

/** Bytes per weight of each ggml type whisper.cpp models use (blocks of 32 for the quantized ones). */
const BYTES_PER_WEIGHT: Record<number, number> = {
  0: 4, // f32
  1: 2, // f16
  2: 18 / 32, // q4_0
  3: 20 / 32, // q4_1
  6: 22 / 32, // q5_0
  7: 24 / 32, // q5_1
  8: 34 / 32, // q8_0
};
/** whisper.cpp's `ftype` → ggml type. */
const FTYPE_TYPE: Record<number, number> = { 0: 0, 1: 1, 2: 2, 3: 3, 7: 8, 8: 6, 9: 7 };

/**
 * Reads the header of a whisper.cpp ggml model (`ggml-tiny.en.bin`): the magic, eleven
 * int32 hyper-parameters, the mel filters and the vocabulary, all of which must be
 * whole and plausible. Tensors are not read (whisper.cpp's test models have none).
 * @throws InvalidWhisperModelError when the file is not such a model or is cut short.
 */
export async function inspectWhisper(path: string): Promise<WhisperSummary> {
  const stats = await stat(path);
  const handle = await open(path, "r");
  let head: Buffer;
  try {
    const length = Math.min(stats.size, MAX_HEADER_BYTES);
    head = Buffer.alloc(length);
    const { bytesRead } = await handle.read(head, 0, length, 0);
    head = head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const bad = (reason: string): never => {
    throw new InvalidWhisperModelError(path, reason);
  };
  let at = 0;
  const int = (what: string): number => {
    if (at + 4 > head.length) bad(`file is truncated in the ${what}`);
    const value = head.readInt32LE(at);
    at += 4;
    return value;
  };
  const magic = head.length >= 4 ? head.readUInt32LE(0) : -1;
  if (magic !== WHISPER_MAGIC)
    bad(`bad magic 0x${(magic >>> 0).toString(16)} (expected 0x${WHISPER_MAGIC.toString(16)})`);
  at = 4;
  const names = [
    "nVocab",
    "nAudioCtx",
    "nAudioState",
    "nAudioHead",
    "nAudioLayer",
    "nTextCtx",
    "nTextState",
    "nTextHead",
    "nTextLayer",
    "nMels",
    "ftype",
  ] as const;
  const raw = Object.fromEntries(names.map((name) => [name, int("hyper-parameters")])) as unknown as WhisperHparams;
  const hparams: WhisperHparams = { ...raw, ftype: raw.ftype % GGML_QNT_VERSION_FACTOR };
  for (const name of names.slice(0, 10)) {
    const value = hparams[name];
    if (!(value > 0 && value <= 1_000_000)) bad(`hyper-parameter ${name} is ${value}`);
  }
  if (hparams.nAudioState % hparams.nAudioHead !== 0 || hparams.nTextState % hparams.nTextHead !== 0)
    bad("the attention heads do not divide the state size");
  if (FTYPE_TYPE[hparams.ftype] === undefined) bad(`unknown ftype ${hparams.ftype}`);

  // Mel filters: n_mel, n_fft, then n_mel × n_fft float32.
  const filterMels = int("mel filters");
  const filterFft = int("mel filters");
  if (filterMels !== hparams.nMels) bad(`the mel filters have ${filterMels} bins, the header says ${hparams.nMels}`);
  if (!(filterFft > 0 && filterFft <= 4096)) bad(`the mel filters have ${filterFft} FFT bins`);
  at += filterMels * filterFft * 4;

  // Vocabulary: a count, then each token as a uint32 length and its bytes.
  const vocab = int("vocabulary");
  if (vocab <= 0 || vocab > hparams.nVocab)
    bad(`the vocabulary holds ${vocab} tokens, the header says ${hparams.nVocab}`);
  for (let i = 0; i < vocab; i++) {
    const length = int("vocabulary");
    if (length < 0 || length > 1024) bad(`token ${i} is ${length} bytes long`);
    at += length;
  }
  if (at > head.length) bad("file is truncated in the vocabulary");

  const parameters = whisperParameters(hparams);
  return {
    fileSizeBytes: stats.size,
    modifiedAt: stats.mtimeMs,
    hparams,
    parameters,
    multilingual: hparams.nVocab > ENGLISH_VOCAB,
    memoryBytes: estimateWhisperMemory(hparams),
  };
}

/**
 * Parameters of a Whisper model from its shapes: the encoder's two convolutions, position
 * embedding and blocks (attention and a 4× MLP: about 12·state² each), the decoder's token
 * and position embeddings and blocks (self and cross attention and the MLP: about 16·state²
 * each), with their biases and layer norms. tiny counts 37.8M (39M published).
 */
export function whisperParameters(h: WhisperHparams): number {
  const s = h.nAudioState;
  const t = h.nTextState;
  const encoderBlock = 4 * s * s + 3 * s + 2 * s + (8 * s * s + 5 * s) + 4 * s;
  const encoder = h.nMels * s * 3 + s + s * s * 3 + s + h.nAudioCtx * s + h.nAudioLayer * encoderBlock + 2 * s;
  const decoderBlock = 2 * (4 * t * t + 3 * t) + (8 * t * t + 5 * t) + 6 * t;
  const decoder = h.nVocab * t + h.nTextCtx * t + h.nTextLayer * decoderBlock + 2 * t;
  return encoder + decoder;
}

/**
 * Memory to run a Whisper model (on a GPU or in RAM), bytes:
 * - the weights: the parameters at the file's weight type (f16: 2 bytes);
 * - the KV caches in f16: self-attention over the text context and cross-attention over
 *   the audio context, keys and values, for each decoder layer;
 * - compute buffers: the encoder's activations (24 × audio context × audio state, f32)
 *   and the decoder's logits (vocabulary × text context, f32).
 * tiny comes to about 235 MB and large to about 3.7 GB, near whisper.cpp's published
 * 273 MB and 3.9 GB.
 */
export function estimateWhisperMemory(h: WhisperHparams): number {
  const weightBytes = whisperParameters(h) * (BYTES_PER_WEIGHT[FTYPE_TYPE[h.ftype] ?? 1] ?? 2);
  const kvSelf = 2 * h.nTextLayer * h.nTextCtx * h.nTextState * 2;
  const kvCross = 2 * h.nTextLayer * h.nAudioCtx * h.nTextState * 2;
  const encoder = 24 * h.nAudioCtx * h.nAudioState * 4;
  const logits = h.nVocab * h.nTextCtx * 4;
  return Math.ceil(weightBytes + kvSelf + kvCross + encoder + logits);
}
