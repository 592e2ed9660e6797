// Writes docs/how-inference-works.md. Every figure in it is computed here by Corral's own
// code (the estimator `corral models inspect` and the scheduler use, on synthetic GGUF
// headers of Llama-2 7B and 70B) or measured on the tiny real models (tokenization), so
// the doc cannot drift: test/docs checks it. Usage: node --import tsx scripts/inference-doc.ts [--check]
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import prettier from "prettier";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { inspectModel } from "@corral/cli";
import { REASONING_EFFORT_BUDGETS, SamplingOptions, defaultReserveBytes } from "@corral/shared";
import {
  FileType,
  GgmlType,
  LLAMA2_70B,
  LLAMA2_7B,
  writeSyntheticGguf,
  type SyntheticLlamaSpec,
} from "../test/support/gguf-writer.js";

const GiB = 1024 ** 3;
/** GPU memory sizes (GiB) the doc tests models against. */
const GPUS = [8, 24, 48, 80];
const usable = (gpuGiB: number) => gpuGiB * GiB - defaultReserveBytes(gpuGiB * GiB);
const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;

/** KV cache bytes: K and V, per layer, per token, n_kv_heads × head_dim values of `bytesPerValue`. */
export function kvCacheBytes(spec: Omit<SyntheticLlamaSpec, "fileType">, tokens: number, bytesPerValue = 2): number {
  const headDim = spec.embeddingLength / spec.headCount;
  return 2 * spec.blockCount * tokens * spec.headCountKv * headDim * bytesPerValue;
}

async function tokenization(modelsDir: string) {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
  const texts = [
    "Once upon a time, there was a little girl named Lily.",
    "Ngày xửa ngày xưa, có một cô bé tên là Lily.",
  ];
  const rows: string[][] = [];
  try {
    for (const file of ["stories260K.gguf", "llama-2-tiny-random.gguf"]) {
      const model = await llama.loadModel({ modelPath: join(modelsDir, file) });
      try {
        const vocab = (await inspectModel(join(modelsDir, file))).metadata["tokenizer.ggml.tokens"];
        for (const text of texts) {
          const tokens = model.tokenize(text);
          const pieces = tokens.slice(0, 8).map((t) => JSON.stringify(model.detokenize([t])));
          rows.push([
            `\`${file}\``,
            String(vocab).replace(/^\[(\d+) items\]$/, "$1"),
            `"${text}"`,
            `${[...text].length}`,
            `${tokens.length}`,
            pieces.join(" "),
          ]);
        }
      } finally {
        await model.dispose();
      }
    }
  } finally {
    await llama.dispose();
  }
  return rows;
}

function table(headers: string[], rows: string[][]): string {
  return [
    `| ${headers.join(" | ")} |`,
    `| ${headers.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

export async function renderInferenceDoc(modelsDir: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "corral-inference-doc-"));
  try {
    const variants = [
      { label: "Llama-2 7B", spec: LLAMA2_7B, type: FileType.MOSTLY_F16, quant: "F16" },
      { label: "Llama-2 7B", spec: LLAMA2_7B, type: FileType.MOSTLY_Q8_0, quant: "Q8_0" },
      { label: "Llama-2 7B", spec: LLAMA2_7B, type: FileType.MOSTLY_Q4_K_M, quant: "Q4_K_M" },
      { label: "Llama-2 70B", spec: LLAMA2_70B, type: FileType.MOSTLY_Q4_K_M, quant: "Q4_K_M" },
    ];
    const estimateRows: string[][] = [];
    const fits: { model: string; sequences: number; vram: number }[] = [];
    const sizeRows: string[][] = [];
    for (const v of variants) {
      const path = join(dir, `${v.label.replace(/\W+/g, "-")}-${v.quant}.gguf`);
      const written = await writeSyntheticGguf(path, { ...v.spec, fileType: v.type });
      const one = await inspectModel(path, 1, [4096]);
      const four = await inspectModel(path, 4, [4096]);
      sizeRows.push([
        v.label,
        v.quant,
        (written.parameters / 1e9).toFixed(2) + " B",
        gib(one.size_bytes),
        ((one.size_bytes * 8) / written.parameters).toFixed(2),
      ]);
      if (v.quant === "Q4_K_M") {
        fits.push({ model: `${v.label} ${v.quant}`, sequences: 1, vram: one.estimates[0]!.vram_bytes });
        fits.push({ model: `${v.label} ${v.quant}`, sequences: 4, vram: four.estimates[0]!.vram_bytes });
      }
      estimateRows.push([
        v.label,
        v.quant,
        gib(one.size_bytes),
        gib(one.estimates[0]!.vram_bytes),
        gib(four.estimates[0]!.vram_bytes),
        gib(one.estimates[0]!.ram_bytes),
      ]);
    }
    const fitLines = fits.map((f) => {
      const yes = GPUS.filter((g) => f.vram <= usable(g));
      const no = GPUS.filter((g) => f.vram > usable(g));
      return `- ${f.model} at 4096 × ${f.sequences} needs ${gib(f.vram)}: it fits a GPU of ${yes.map((g) => `${g}`).join(", ")} GiB${no.length > 0 ? `, not one of ${no.join(", ")} GiB` : ""}.`;
    });
    const kv7 = kvCacheBytes(LLAMA2_7B, 4096);
    const kv70 = kvCacheBytes(LLAMA2_70B, 4096);
    const bitsRows = Object.entries(GgmlType).map(([name, id]) => {
      const layout = {
        [GgmlType.F32]: [1, 4],
        [GgmlType.F16]: [1, 2],
        [GgmlType.Q8_0]: [32, 34],
        [GgmlType.Q4_K]: [256, 144],
        [GgmlType.Q5_K]: [256, 176],
        [GgmlType.Q6_K]: [256, 210],
      }[id]!;
      return [
        `\`${name}\``,
        String(layout[0]),
        String(layout[1]),
        ((layout[1]! * 8) / layout[0]!).toFixed(4).replace(/\.?0+$/, ""),
      ];
    });
    const defaults = SamplingOptions.parse({});
    const tokens = await tokenization(modelsDir);

    const text = `# How inference works (and what Corral computes for it)

A study companion to [gpu-setup.md](gpu-setup.md): what happens between a prompt and its
answer, with the numbers Corral itself uses. This page is generated by
\`node --import tsx scripts/inference-doc.ts\`: the estimates come from Corral's estimator
(the one \`corral models inspect\` prints and the scheduler places jobs with) run on
synthetic GGUF headers of Llama-2 7B and 70B (real shapes and tensor types, no weights),
and the tokenization from the tiny real models in the test models folder. A test fails
when the page and the code disagree.

## Tokens and tokenizers

A model reads and writes **tokens**, pieces of text from a fixed vocabulary, not
characters. The tokenizer is part of the GGUF file (\`tokenizer.ggml.*\` in
\`corral models inspect\`). The same text costs a different number of tokens per model,
and text in a language the vocabulary saw little of costs more. Measured with
node-llama-cpp's \`model.tokenize\`; the first 8 pieces are shown, each detokenized on its
own: \`""\` is a lone word-start marker, and \`"�"\` is one byte of a character the
vocabulary has no piece for (the tokenizer falls back to bytes):

${table(["model", "vocabulary", "text", "characters", "tokens", "first pieces"], tokens)}

Everything is counted in tokens: \`max_tokens\`, the context size, the usage in each
answer, tenants' daily budgets, and the KV cache below.

## The KV cache and its size

To generate token _n_, attention needs the keys and values of tokens 1 … _n_−1 in every
layer. llama.cpp keeps them in the **KV cache** instead of recomputing them, so its size
grows with the number of tokens held:

\`\`\`
KV bytes = 2 (K and V) × layers × tokens × KV heads × head dimension × bytes per value
\`\`\`

With 16-bit values (llama.cpp's default \`f16\` cache):

- Llama-2 7B (32 layers, 32 KV heads of 128): 2 × 32 × 4096 × 32 × 128 × 2 = **${gib(kv7)}** for 4096 tokens.
- Llama-2 70B (80 layers, but grouped-query attention: 8 KV heads of 128): 2 × 80 × 4096 × 8 × 128 × 2 = **${gib(kv70)}** for 4096 tokens.

Grouped-query attention (several query heads sharing one KV head) is why the 70B model's
cache is smaller than the 7B's. A Corral model holds \`context_size × sequences\` tokens of
cache (\`models.yaml\`, or \`CORRAL_CONTEXT_SIZE\` × \`CORRAL_SEQUENCES\`), allocated when the
model loads.

## How Corral estimates VRAM

A job's requirement is the VRAM to load its model with every layer on the GPU (full
offload) at the model's context size and sequences: **weights + KV cache + compute
buffers**. Corral takes it from node-llama-cpp's formula estimators
(\`GgufInsights.estimateModelResourceRequirements\` and
\`estimateContextResourceRequirements\`), which read only the GGUF header. A slot claims the
job only when the requirement fits the GPU's live free VRAM minus the reserve
([operations](operations.md#vram-and-placement)). The figures:

${table(["model", "quantization", "file", "VRAM, 4096 × 1 sequence", "VRAM, 4096 × 4 sequences", "RAM for CPU only, 4096 × 1"], estimateRows)}

Going from 1 to 4 sequences adds three more contexts of cache and larger compute buffers;
the weights stay the same. See your own model with:

\`\`\`sh
npx corral models inspect <file or id> --context-size 4096 --sequences 4
\`\`\`

When the estimate is wrong for a model (a new architecture, for example), set \`vram:\`
for it in \`models.yaml\`; a load that still runs out of memory puts the job back and marks
the model as not fitting that GPU for a while.

## Quantization: what it costs

Quantization stores weights in fewer bits, in blocks that share a scale. What each ggml
type takes (from the block layouts in llama.cpp's \`ggml\`):

${table(["type", "weights per block", "bytes per block", "bits per weight"], bitsRows)}

A file type such as \`Q4_K_M\` mixes them: most tensors in \`Q4_K\`, some that matter more
(parts of attention and the feed-forward output) in \`Q6_K\`, norms in \`F32\`. The result
for Llama-2 7B and 70B, as written by Corral's synthetic GGUF writer (which types tensors
the way llama.cpp's quantizer does):

${table(["model", "file type", "parameters", "file", "bits per weight"], sizeRows)}

Fewer bits cost quality: the lower the bits per weight, the more the model's answers drift
from the F16 model's. The loss is small at Q8_0 and grows below about 4 bits. Corral does not
measure quality; the model's card and llama.cpp's perplexity tool (\`llama-perplexity\`) do.
What follows from the tables, with a worker's default reserve (min(8 %, 1.6 GiB) of the GPU;
usable: ${GPUS.map((g) => `${gib(usable(g))} of ${g} GiB`).join(", ")}). Corral places a model on one GPU;
it does not split one across GPUs yet.
${fitLines.join("\n")}

## Sampling parameters

The model gives a probability for every token of the vocabulary; sampling picks one.
Corral passes these request fields to node-llama-cpp (defaults from Corral's schema):

| field | default | what it does |
| --- | --- | --- |
| \`temperature\` | ${defaults.temperature} | flattens (> 1) or sharpens (< 1) the distribution; 0 always takes the most likely token (greedy, deterministic) |
| \`top_k\` | not set | keep only the k most likely tokens |
| \`top_p\` | not set | keep the smallest set of tokens whose probabilities add up to p |
| \`seed\` | not set | makes sampling at temperature > 0 repeatable on the same model and build |
| \`max_tokens\` | ${defaults.max_tokens} (native jobs) | stop after this many generated tokens (\`finish_reason: "length"\`) |
| \`stop\` | not set | up to 4 strings that end the answer |

Limits and the OpenAI fields Corral accepts or refuses: [api.md](api.md).

## Sequences and batching

A loaded model has \`sequences\` parallel sequences, each with its own slice of KV cache.
Each job runs on one sequence; llama.cpp then decodes the next token of every active job in
one batch, so 4 jobs take little more time per step than 1 on a GPU (the weights are read
from memory once per step for all of them). That is why Corral keeps a model loaded and
sends it more jobs for the same model first. The price is memory: each sequence's cache is
allocated at load (the 4-sequence column above).

## Reasoning models

Models such as DeepSeek-R1 and Qwen3 write a thinking segment before the answer
(\`<think>…</think>\` for R1). Corral picks the model's chat template from its GGUF
(node-llama-cpp resolves R1's template to its DeepSeek template); when that template has
thought segments, a chat's thoughts come back apart from the answer: \`message.reasoning_content\`
and \`delta.reasoning_content\` on the OpenAI API, \`result.reasoning\` in job records, and
\`usage.completion_tokens_details.reasoning_tokens\` counting them. R1's own template opens
the thought at the start of every answer (its generation prompt ends with \`<think>\`, as
DeepSeek recommends, since R1 otherwise tends to skip thinking); Corral does the same for
R1-style templates, so the model always thinks first, unless thinking is off or a
\`response_format\` grammar constrains the output (the grammar then shapes the whole answer,
with no thought).

The thinking is limited by a budget of thought tokens: when it is spent, node-llama-cpp
closes the thought (writes \`</think>\` for the model) and the answer follows. A request sets
it with \`reasoning_effort\` or, exactly, with \`max_reasoning_tokens\`:

| \`reasoning_effort\` | thought tokens |
| --- | --- |
${Object.entries(REASONING_EFFORT_BUDGETS)
  .map(
    ([effort, budget]) =>
      `| \`${effort}\`${effort === "medium" ? " (default)" : ""} | ${budget === 0 ? "0 (no thinking)" : budget} |`,
  )
  .join("\n")}

Thought tokens are generated tokens like the others: they count in \`completion_tokens\` and
against \`max_tokens\`, take time, count towards the time to first token (the first thought
token is the first token), and fill the context, so give such models a larger
\`max_tokens\` and context size than the budget.
`;
    const options = (await prettier.resolveConfig(target)) ?? {};
    return prettier.format(text, { ...options, parser: "markdown" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const target = fileURLToPath(new URL("../docs/how-inference-works.md", import.meta.url));
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const modelsDir =
    process.env.CORRAL_TEST_MODELS_DIR ?? fileURLToPath(new URL("../../shared/models", import.meta.url));
  const text = await renderInferenceDoc(modelsDir);
  if (process.argv.includes("--check")) {
    if (readFileSync(target, "utf8") !== text) {
      console.error("docs/how-inference-works.md is out of date: run node --import tsx scripts/inference-doc.ts");
      process.exit(1);
    }
  } else {
    writeFileSync(target, text);
    console.log(`wrote ${target}`);
  }
}
