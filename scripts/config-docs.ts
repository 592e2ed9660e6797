// Writes docs/configuration.md from the variables documented in code (COMMON_ENV,
// SCHEDULER_ENV, WORKER_ENV), so the docs cannot drift: test/docs checks it.
// Usage: node --import tsx scripts/config-docs.ts [--check]
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SCHEDULER_ENV } from "@corral/scheduler";
import { WORKER_ENV } from "@corral/worker";
import { COMMON_ENV, variableToFlag } from "@corral/shared";
import { HF_TOKEN_VARIABLE, MODELS_ENV } from "@corral/cli";
import prettier from "prettier";

interface Doc {
  name: string;
  default: string | null;
  description: string;
}

const escape = (text: string): string => text.replace(/\|/g, "\\|");

function table(docs: readonly Doc[]): string {
  const rows = docs.map(
    (d) =>
      `| \`${d.name}\` | \`${variableToFlag(d.name)}\` | ${d.default === null ? "none" : `\`${escape(d.default)}\``} | ${escape(d.description)} |`,
  );
  return ["| variable | flag | default | meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

export async function renderConfigurationDoc(): Promise<string> {
  // COMMON_ENV, then any other variable both apps list (each documents it itself).
  const both = SCHEDULER_ENV.filter((s) => WORKER_ENV.some((w) => w.name === s.name));
  const shared = [...COMMON_ENV, ...both.filter((d) => !COMMON_ENV.some((c) => c.name === d.name))];
  const common = new Set(shared.map((d) => d.name));
  const text = `# Configuration

Each process reads its settings from environment variables once, at start
(\`loadConfig(env)\`), and every variable has a matching CLI flag: flags win over the
environment. A bad value stops the process at start with a message naming the variable
and what it expects, for example \`CORRAL_PORT: expected an integer from 0 to 65535 (got "abc")\`.

Sizes accept bytes or units (\`512MB\`, \`20GiB\`); durations accept milliseconds or
units (\`30s\`, \`5m\`). The limits that keep one caller from hurting the others, and what a
caller sees past each, are in [security.md](security.md).

This page is generated from the code (\`node --import tsx scripts/config-docs.ts\`); a test
fails when it is out of date.

## Shared by the scheduler and the workers

${table(shared)}

## Scheduler (\`corral scheduler\`)

${table(SCHEDULER_ENV.filter((d) => !common.has(d.name)))}

## Worker (\`corral worker\`)

${table(WORKER_ENV.filter((d) => !common.has(d.name)))}

## Client commands (\`corral submit\`, \`models\`, \`workers\`, \`batch\`)

| variable | flag | default | meaning |
| --- | --- | --- | --- |
| \`CORRAL_URL\` | \`--url\` | \`http://127.0.0.1:8080\` | the scheduler to talk to |
| \`CORRAL_API_KEY\` | \`--api-key\` | none | bearer key for the scheduler |

## Model downloads (\`corral models pull\`, \`list\`, \`rm\`, \`inspect\`)

${table(MODELS_ENV.map((d) => ({ name: d.name, default: d.default === null || d.default === undefined ? null : String(d.default), description: d.description })))}

\`HF_ENDPOINT\` (Hugging Face's own variable) is read when \`CORRAL_HF_ENDPOINT\` is unset.
\`${HF_TOKEN_VARIABLE}\` is a Hugging Face read token for gated or private repositories; it is read
from the environment only (no flag, so it stays out of shell history), sent as
\`Authorization: Bearer …\` to the endpoint's own origin only (not to the CDN it redirects
downloads to), and never printed.

## Models folder

\`CORRAL_MODELS_DIR\` holds the \`.gguf\` files. An optional \`models.yaml\` there gives
ids, aliases, the context size and sequences a worker loads each model with, a VRAM
override where the estimate from the GGUF header is wrong, and where a model may run
(\`placement\`: every field set must hold; see docs/operations.md, "Pinning models"):

\`\`\`yaml
models:
  - file: stories260K.gguf
    id: stories
    aliases: [tiny-stories]
    context_size: 512
    sequences: 4
    vram: 20GiB
    placement:
      hosts: [gpu-box-1]
      gpu_names: [A5000]
      gpus: [0, 1]
      min_vram: 24GiB
\`\`\`

The scheduler scans the folder at startup, every \`CORRAL_CATALOG_RESCAN_MS\` and on
SIGHUP, and publishes the catalog to Redis, where the workers read it: a model copied in
is served within a rescan (a file still being copied is skipped with a warning until it
reads whole), one removed is refused with 404 \`model_not_found\`, and a \`models.yaml\`
that does not parse keeps the previous catalog.
`;
  const options = (await prettier.resolveConfig(target)) ?? {};
  return prettier.format(text, { ...options, parser: "markdown" });
}

const target = fileURLToPath(new URL("../docs/configuration.md", import.meta.url));
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = await renderConfigurationDoc();
  if (process.argv.includes("--check")) {
    if (readFileSync(target, "utf8") !== text) {
      console.error("docs/configuration.md is out of date: run node --import tsx scripts/config-docs.ts");
      process.exit(1);
    }
  } else {
    writeFileSync(target, text);
    console.log(`wrote ${target}`);
  }
}
