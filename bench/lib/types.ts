import type { BenchRedis } from "./bench-redis.js";

/** What every benchmark function receives from the runner. */
export interface BenchOptions {
  /** A tiny run: a handful of jobs, one measured run, short rates. For the smoke test and quick checks. */
  quick: boolean;
  /** The dedicated throwaway Redis of this run (`redis-server` child, statistics resettable). */
  redis: BenchRedis;
  /** Same as `redis.url`, for benchmarks that only need the URL. */
  redisUrl: string;
  /** Folder holding `stories260K.gguf` (CORRAL_MODELS_DIR or CORRAL_TEST_MODELS_DIR or ../shared/models). */
  modelsDir: string;
  /**
   * The model of the end-to-end benchmark (CORRAL_BENCH_MODEL, a .gguf path; default
   * stories260K). The other benchmarks measure orchestration and always use stories260K on the CPU.
   */
  model: { id: string; path: string };
  /** End-to-end benchmark on the GPU (CORRAL_BENCH_GPU=1): Corral's GPU slot against direct full offload. */
  gpu: boolean;
  /** llama.cpp threads per slot in the end-to-end benchmark (CORRAL_BENCH_THREADS). @defaultValue 1 */
  threads: number;
  /** Jobs per end-to-end run (CORRAL_BENCH_JOBS); null: 300 (8 with `quick`). */
  jobs: number | null;
  /**
   * The cluster simulator's sizes (CORRAL_BENCH_SIM_SIZES, e.g. "100x10,500x100": slots x
   * models); null: its own grid.
   */
  simSizes: string | null;
  /** Measured runs per figure (the median is reported); a warm-up run comes first. */
  runs: number;
  /** Folder for `--cpu-prof` output of the scheduler and worker processes; null: no profiling. */
  profileDir: string | null;
  /** Folder for the child processes' logs. */
  logDir: string;
  /** Progress lines (stderr). */
  log: (message: string) => void;
}

/**
 * One benchmark's entry in latest.json: the Corral figure, the baseline measured in the
 * same run, their ratio, and whether the target is met. Extra figures sit beside them.
 */
export interface BenchResult {
  corral: number | null;
  baseline: number | null;
  /** corral / baseline (for a latency, the figure compared is in `target`). */
  ratio: number | null;
  unit: string;
  /** The target in words, e.g. "ratio >= 0.90". */
  target: string;
  /** null when the benchmark has no target. */
  met: boolean | null;
  /** Extra figures. */
  [extra: string]: unknown;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memory_bytes: number;
  node: string;
  platform: string;
  date: string;
  load_average: number[];
  redis: string;
  node_llama_cpp: string;
  bullmq: string;
}

export interface BenchReport {
  machine: MachineInfo;
  quick: boolean;
  runs: number;
  duration_s: number;
  [benchmark: string]: unknown;
}

/** A benchmark as the runner knows it. */
export interface BenchDefinition {
  name: string;
  title: string;
  run(options: BenchOptions): Promise<BenchResult>;
}
