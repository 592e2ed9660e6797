import { open, readFile, writeFile } from "node:fs/promises";

/**
 * Writes synthetic, header-only GGUF v3 files for llama-architecture models: magic,
 * version, metadata and the tensor-info table with real shapes, types and offsets, but no
 * tensor data. node-llama-cpp's `readGgufFileInfo` and `GgufInsights` read them like the
 * real thing, so tests can size a 70B model without a 40 GB download. They cannot be
 * loaded for inference.
 *
 * By default the file is then extended with a hole to the size the tensors would take
 * (a sparse file: it uses only the header's disk blocks), so a scanner that checks for
 * truncated files accepts it and `stat` reports a realistic size.
 *
 * `copyGgufWithChatTemplate` instead copies a real (tiny) GGUF under another chat
 * template, so the engine can run real weights with, say, DeepSeek R1's template.
 */
export interface SyntheticLlamaSpec {
  name: string;
  blockCount: number;
  embeddingLength: number;
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  contextLength: number;
  vocabSize: number;
  /** llama.cpp `llama_ftype`: 0 ALL_F32, 1 MOSTLY_F16, 7 MOSTLY_Q8_0, 15 MOSTLY_Q4_K_M. */
  fileType: SyntheticFileType;
  /** Written as `tokenizer.chat_template` when set. */
  chatTemplate?: string;
}

export const FileType = { ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q8_0: 7, MOSTLY_Q4_K_M: 15 } as const;
export type SyntheticFileType = (typeof FileType)[keyof typeof FileType];

/** Llama-2-7B (6.74e9 parameters). */
export const LLAMA2_7B: Omit<SyntheticLlamaSpec, "fileType"> = {
  name: "Llama-2-7B (synthetic)",
  blockCount: 32,
  embeddingLength: 4096,
  feedForwardLength: 11008,
  headCount: 32,
  headCountKv: 32,
  contextLength: 4096,
  vocabSize: 32000,
};

/** Llama-2-70B (6.9e10 parameters, grouped-query attention with 8 KV heads). */
export const LLAMA2_70B: Omit<SyntheticLlamaSpec, "fileType"> = {
  name: "Llama-2-70B (synthetic)",
  blockCount: 80,
  embeddingLength: 8192,
  feedForwardLength: 28672,
  headCount: 64,
  headCountKv: 8,
  contextLength: 4096,
  vocabSize: 32000,
};

/** ggml tensor types used here, with (elements per block, bytes per block). */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14 } as const;
type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];
const TYPE_LAYOUT: Record<GgmlTypeId, { block: number; bytes: number }> = {
  [GgmlType.F32]: { block: 1, bytes: 4 },
  [GgmlType.F16]: { block: 1, bytes: 2 },
  [GgmlType.Q8_0]: { block: 32, bytes: 34 },
  [GgmlType.Q4_K]: { block: 256, bytes: 144 },
  [GgmlType.Q5_K]: { block: 256, bytes: 176 },
  [GgmlType.Q6_K]: { block: 256, bytes: 210 },
};

export interface SyntheticTensor {
  name: string;
  /** ggml order: `dims[0]` is the contiguous (row) dimension. */
  dims: number[];
  type: GgmlTypeId;
}

export interface WrittenGguf {
  path: string;
  tensors: SyntheticTensor[];
  /** Sum of the tensors' element counts. */
  parameters: number;
  /** Bytes the tensor data would take (with alignment padding). */
  dataBytes: number;
  /** Where the tensor data would start. */
  dataOffset: number;
  /** The file's size on disk (header only, or header + hole). */
  fileSize: number;
}

const ALIGNMENT = 32;

/** The tensors of a llama model, typed as llama.cpp's quantizer would for `fileType`. */
export function llamaTensors(spec: SyntheticLlamaSpec): SyntheticTensor[] {
  const { blockCount: n, embeddingLength: embd, feedForwardLength: ff, vocabSize: vocab } = spec;
  const kvDim = (embd / spec.headCount) * spec.headCountKv;
  const weight = (role: "embd" | "output" | "attn_v" | "ffn_down" | "other", layer: number): GgmlTypeId => {
    switch (spec.fileType) {
      case FileType.ALL_F32:
        return GgmlType.F32;
      case FileType.MOSTLY_F16:
        return GgmlType.F16;
      case FileType.MOSTLY_Q8_0:
        return GgmlType.Q8_0;
      case FileType.MOSTLY_Q4_K_M: {
        // llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third between.
        const moreBits = layer < n / 8 || layer >= (7 * n) / 8 || (layer - Math.floor(n / 8)) % 3 === 2;
        if (role === "output") return GgmlType.Q6_K;
        if (role === "attn_v")
          return moreBits ? GgmlType.Q6_K : spec.headCount / spec.headCountKv >= 8 ? GgmlType.Q5_K : GgmlType.Q4_K;
        if (role === "ffn_down") return moreBits ? GgmlType.Q6_K : GgmlType.Q4_K;
        return GgmlType.Q4_K;
      }
    }
  };
  const tensors: SyntheticTensor[] = [{ name: "token_embd.weight", dims: [embd, vocab], type: weight("embd", 0) }];
  for (let i = 0; i < n; i++) {
    const b = `blk.${i}`;
    tensors.push(
      { name: `${b}.attn_norm.weight`, dims: [embd], type: GgmlType.F32 },
      { name: `${b}.attn_q.weight`, dims: [embd, embd], type: weight("other", i) },
      { name: `${b}.attn_k.weight`, dims: [embd, kvDim], type: weight("other", i) },
      { name: `${b}.attn_v.weight`, dims: [embd, kvDim], type: weight("attn_v", i) },
      { name: `${b}.attn_output.weight`, dims: [embd, embd], type: weight("other", i) },
      { name: `${b}.ffn_norm.weight`, dims: [embd], type: GgmlType.F32 },
      { name: `${b}.ffn_gate.weight`, dims: [embd, ff], type: weight("other", i) },
      { name: `${b}.ffn_up.weight`, dims: [embd, ff], type: weight("other", i) },
      { name: `${b}.ffn_down.weight`, dims: [ff, embd], type: weight("ffn_down", i) },
    );
  }
  tensors.push(
    { name: "output_norm.weight", dims: [embd], type: GgmlType.F32 },
    { name: "output.weight", dims: [embd, vocab], type: weight("output", n) },
  );
  return tensors;
}

/** Bytes one tensor's data takes. */
export function tensorBytes(tensor: SyntheticTensor): number {
  const layout = TYPE_LAYOUT[tensor.type];
  const [row = 1, ...rest] = tensor.dims;
  if (row % layout.block !== 0) throw new Error(`${tensor.name}: row of ${row} is not a multiple of ${layout.block}`);
  return (row / layout.block) * layout.bytes * rest.reduce((a, b) => a * b, 1);
}

/** Writes a header-only GGUF for `spec` to `path`. */
export async function writeSyntheticGguf(
  path: string,
  spec: SyntheticLlamaSpec,
  options: {
    /**
     * Extend the file with a hole to its full size.
     * @defaultValue true
     */
    sparse?: boolean;
  } = {},
): Promise<WrittenGguf> {
  const { sparse = true } = options;
  const tensors = llamaTensors(spec);
  const w = new GgufBuffer();

  const metadata: [string, MetaValue][] = [
    ["general.architecture", { string: "llama" }],
    ["general.name", { string: spec.name }],
    ["general.file_type", { u32: spec.fileType }],
    ["general.alignment", { u32: ALIGNMENT }],
    ["llama.context_length", { u32: spec.contextLength }],
    ["llama.embedding_length", { u32: spec.embeddingLength }],
    ["llama.block_count", { u32: spec.blockCount }],
    ["llama.feed_forward_length", { u32: spec.feedForwardLength }],
    ["llama.rope.dimension_count", { u32: spec.embeddingLength / spec.headCount }],
    ["llama.attention.head_count", { u32: spec.headCount }],
    ["llama.attention.head_count_kv", { u32: spec.headCountKv }],
    ["llama.attention.layer_norm_rms_epsilon", { f32: 1e-5 }],
    ["llama.vocab_size", { u32: spec.vocabSize }],
    ["tokenizer.ggml.model", { string: "llama" }],
    ["tokenizer.ggml.bos_token_id", { u32: 1 }],
    ["tokenizer.ggml.eos_token_id", { u32: 2 }],
  ];
  if (spec.chatTemplate !== undefined) metadata.push(["tokenizer.chat_template", { string: spec.chatTemplate }]);

  w.bytes(Buffer.from("GGUF", "ascii"));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.string(key);
    w.value(value);
  }

  let offset = 0;
  let parameters = 0;
  for (const tensor of tensors) {
    w.string(tensor.name);
    w.u32(tensor.dims.length);
    for (const dim of tensor.dims) w.u64(dim);
    w.u32(tensor.type);
    w.u64(offset);
    offset = alignUp(offset + tensorBytes(tensor), ALIGNMENT);
    parameters += tensor.dims.reduce((a, b) => a * b, 1);
  }
  const header = w.finish();
  const dataOffset = alignUp(header.length, ALIGNMENT);
  const dataBytes = offset;

  const handle = await open(path, "w");
  try {
    await handle.write(header, 0, header.length, 0);
    await handle.truncate(sparse ? dataOffset + dataBytes : header.length);
  } finally {
    await handle.close();
  }
  return {
    path,
    tensors,
    parameters,
    dataBytes,
    dataOffset,
    fileSize: sparse ? dataOffset + dataBytes : header.length,
  };
}

type MetaValue = { string: string } | { u32: number } | { f32: number };

const alignUp = (n: number, alignment: number): number => Math.ceil(n / alignment) * alignment;

/** Little-endian GGUF encoder. */
class GgufBuffer {
  readonly #chunks: Buffer[] = [];

  bytes(buffer: Buffer): void {
    this.#chunks.push(buffer);
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.#chunks.push(b);
  }
  u64(n: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.#chunks.push(b);
  }
  f32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(n);
    this.#chunks.push(b);
  }
  string(s: string): void {
    const utf8 = Buffer.from(s, "utf8");
    this.u64(utf8.length);
    this.#chunks.push(utf8);
  }
  /** A typed metadata value: GGUF type id, then the value. */
  value(v: MetaValue): void {
    if ("string" in v) {
      this.u32(8);
      this.string(v.string);
    } else if ("u32" in v) {
      this.u32(4);
      this.u32(v.u32);
    } else {
      this.u32(6);
      this.f32(v.f32);
    }
  }
  finish(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/**
 * Copies a real GGUF (weights and all) to `path` with `tokenizer.chat_template` set to
 * `template` (replacing the file's own, if any), so a tiny model can be run under any
 * chat template. Every other metadata entry, the tensor table and the tensor data are
 * copied byte for byte; only the data's start moves (GGUF tensor offsets are relative to it).
 */
export async function copyGgufWithChatTemplate(source: string, path: string, template: string): Promise<void> {
  const file = await readFile(source);
  const reader = new GgufReader(file);
  if (file.toString("ascii", 0, 4) !== "GGUF") throw new Error(`${source} is not a GGUF file`);
  reader.skip(4);
  const version = reader.u32();
  if (version < 2) throw new Error(`${source}: GGUF v${version} is not supported`);
  const tensorCount = reader.u64();
  const kvCount = reader.u64();
  const entries: Buffer[] = [];
  let alignment = ALIGNMENT;
  for (let i = 0; i < kvCount; i++) {
    const start = reader.offset;
    const key = reader.string();
    const type = reader.u32();
    if (key === "general.alignment" && type === 4) alignment = file.readUInt32LE(reader.offset);
    reader.skipValue(type);
    if (key !== "tokenizer.chat_template") entries.push(file.subarray(start, reader.offset));
  }
  const tableStart = reader.offset;
  for (let i = 0; i < tensorCount; i++) {
    reader.string();
    const dims = reader.u32();
    reader.skip(dims * 8 + 4 + 8);
  }
  const table = file.subarray(tableStart, reader.offset);
  const data = file.subarray(alignUp(reader.offset, alignment));

  const w = new GgufBuffer();
  w.bytes(Buffer.from("GGUF", "ascii"));
  w.u32(version);
  w.u64(tensorCount);
  w.u64(entries.length + 1);
  for (const entry of entries) w.bytes(entry);
  w.string("tokenizer.chat_template");
  w.value({ string: template });
  w.bytes(table);
  const header = w.finish();
  const padding = Buffer.alloc(alignUp(header.length, alignment) - header.length);
  await writeFile(path, Buffer.concat([header, padding, data]));
}

/** Just enough of a GGUF reader to walk the metadata and tensor table. */
class GgufReader {
  offset = 0;
  readonly #file: Buffer;

  constructor(file: Buffer) {
    this.#file = file;
  }
  skip(bytes: number): void {
    this.offset += bytes;
  }
  u32(): number {
    const n = this.#file.readUInt32LE(this.offset);
    this.offset += 4;
    return n;
  }
  u64(): number {
    const n = Number(this.#file.readBigUInt64LE(this.offset));
    this.offset += 8;
    return n;
  }
  string(): string {
    const length = this.u64();
    const s = this.#file.toString("utf8", this.offset, this.offset + length);
    this.offset += length;
    return s;
  }
  /** Skips a value of GGUF type `type` (arrays included). */
  skipValue(type: number): void {
    const size = GGUF_SCALAR_BYTES[type];
    if (size !== undefined) this.skip(size);
    else if (type === 8) this.string();
    else if (type === 9) {
      const itemType = this.u32();
      const count = this.u64();
      for (let i = 0; i < count; i++) this.skipValue(itemType);
    } else throw new Error(`unknown GGUF value type ${type}`);
  }
}

/** Bytes of GGUF's fixed-size value types: u8, i8, u16, i16, u32, i32, f32, bool, -, -, u64, i64, f64. */
const GGUF_SCALAR_BYTES: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};
