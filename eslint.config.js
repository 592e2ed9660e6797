import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

// ─── Layers ────────────────────────────────────────────────────────────────────
// `no-restricted-imports` takes one list per file (a later block replaces an earlier
// one), so each layer's list repeats the rules of the layers around it.

const srcImports = {
  group: ["@corral/*/src/*", "**/packages/*/src/*", "**/apps/*/src/*"],
  message: "Import the package entry, not its src/.",
};
const noApps = {
  group: [
    "@corral/scheduler",
    "@corral/scheduler/*",
    "@corral/worker",
    "@corral/worker/*",
    "@corral/cli",
    "@corral/cli/*",
  ],
  message: "packages/ (shared, llama) are imported by the apps and import none of them.",
};
const noLlama = {
  group: ["@corral/llama", "@corral/llama/*"],
  message: "packages/shared imports no other package: @corral/llama builds on it, not the other way round.",
};
const noWorker = {
  group: ["@corral/worker", "@corral/worker/*"],
  message: "The scheduler and the worker never import each other: share through @corral/shared.",
};
const noScheduler = { ...noWorker, group: ["@corral/scheduler", "@corral/scheduler/*"] };
/** A relative import of a sibling folder: `../engine/index.js`, `../../engine/x.js`. */
const folder = (names) => `^(\\.{1,2}/)+(.+/)?(${names})(/|$)`;
const engineMessage = "claim/ reaches the engine only through its port (claim/types.ts); slot/ wires the real one in.";
const noEngine = [
  { regex: folder("engine"), message: engineMessage },
  { group: ["node-llama-cpp", "node-llama-cpp/*", "@corral/llama", "@corral/llama/*"], message: engineMessage },
];
const noSlot = {
  regex: folder("slot"),
  message: "claim/ does not import slot/: slot/ composes claim/, not the other way round.",
};
const noHttp = {
  regex: folder("http|api"),
  message:
    "jobs/ and batches/ know nothing of HTTP: throw a typed error (e.g. ValidationError) and let http/ answer it; shared OpenAI shapes live in openai-format/.",
};

const restrict = (...patterns) => ["error", { patterns: [srcImports, ...patterns] }];
// Dynamic `import()` escapes no-restricted-imports; these catch the app packages there too.
const dynamicImportOf = (pattern, message) => ({
  selector: `ImportExpression[source.value=${pattern}]`,
  message,
});

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "bench/results/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-imports": restrict(),
      // Configuration is read once, by the config loaders, from the env object main() passes in.
      "no-restricted-properties": [
        "error",
        {
          object: "process",
          property: "env",
          message: "Read configuration in env.ts (loadConfig(env)) and pass it in; only main.ts hands it process.env.",
        },
      ],
    },
  },
  {
    files: ["packages/shared/**"],
    rules: {
      "no-restricted-imports": restrict(noApps, noLlama),
      "no-restricted-syntax": [
        "error",
        dynamicImportOf("/^@corral\\/(scheduler|worker|cli)/", noApps.message),
        dynamicImportOf("/^@corral\\/llama/", noLlama.message),
      ],
    },
  },
  {
    files: ["packages/llama/**"],
    rules: {
      "no-restricted-imports": restrict(noApps),
      "no-restricted-syntax": ["error", dynamicImportOf("/^@corral\\/(scheduler|worker|cli)/", noApps.message)],
    },
  },
  {
    files: ["apps/scheduler/**"],
    rules: {
      "no-restricted-imports": restrict(noWorker),
      "no-restricted-syntax": ["error", dynamicImportOf("/^@corral\\/worker/", noWorker.message)],
    },
  },
  {
    files: ["apps/scheduler/src/jobs/**", "apps/scheduler/src/batches/**"],
    rules: { "no-restricted-imports": restrict(noWorker, noHttp) },
  },
  {
    files: ["apps/worker/**"],
    rules: {
      "no-restricted-imports": restrict(noScheduler),
      "no-restricted-syntax": ["error", dynamicImportOf("/^@corral\\/scheduler/", noScheduler.message)],
    },
  },
  {
    files: ["apps/worker/src/claim/**"],
    rules: { "no-restricted-imports": restrict(noScheduler, ...noEngine, noSlot) },
  },
  {
    // Config loaders and entry points may read process.env; so may tests, benchmarks and scripts.
    files: [
      "**/env.ts",
      "**/config/env.ts",
      "**/main.ts",
      "apps/cli/bin/**",
      "**/*.test.ts",
      "**/test-support/**",
      "test/**",
      "bench/**",
      "scripts/**",
    ],
    rules: { "no-restricted-properties": "off" },
  },
  {
    // The web console runs in the browser: DOM globals, no Node; it talks to the scheduler
    // over HTTP only, so it imports no workspace package.
    files: ["apps/console/src/**"],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["@corral/*"], message: "The console uses the public HTTP API only." }] },
      ],
    },
  },
  {
    files: ["**/*.test.ts", "test/**", "bench/**", "scripts/**"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" },
  },
);
