import { Command } from "commander";
import type { CliContext } from "../context.js";
import { listGgufFiles } from "../demo/ensure-demo-model.js";
import { connectRedis, guardRedis, memoryUsedRatio, parseInfo, redactUrl, type RedisTlsFiles } from "@corral/shared";
import { REDIS_INSTALL_HINT, findExecutable, pingRedis } from "../local/redis.js";
import { addEnvOptions } from "../options/env-options.js";
import { envWithFlags, loadOrExplain } from "../options/with-flags.js";
import { ExitCode } from "../errors.js";
import type { CheckResult } from "../doctor/check-result.js";
import { findCudaBinaries } from "../doctor/cuda-binaries.js";
import { checkComputeCapability, checkCudaDriver, probeCudaBackend, usableCudaBinary } from "../doctor/cuda-checks.js";
import { checkModelFit } from "../doctor/model-fit.js";
import { catalogDefaults, scanCatalog } from "../models/local-models.js";

export type { CheckLevel, CheckResult } from "../doctor/check-result.js";

const DOCTOR_VARIABLES = new Set([
  "CORRAL_REDIS_URL",
  "CORRAL_REDIS_ALLOW_EVICTION",
  "CORRAL_REDIS_TLS_CA",
  "CORRAL_REDIS_TLS_CERT",
  "CORRAL_REDIS_TLS_KEY",
  "CORRAL_MODELS_DIR",
  "CORRAL_NVIDIA_SMI",
  "CORRAL_NVIDIA_SMI_TIMEOUT_MS",
  "CORRAL_VRAM_RESERVE",
]);
/** BullMQ refuses older servers. */
const MIN_REDIS = "5.0.0";

/** `"7.0.15"` ≥ `"5.0.0"`. */
function versionAtLeast(version: string, minimum: string): boolean {
  const a = version.split(".").map(Number);
  const b = minimum.split(".").map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** Redis's version and mode (standalone, cluster, sentinel) from INFO server. */
export function checkRedisServer(info: string): CheckResult {
  const fields = parseInfo(info);
  const version = fields.get("redis_version") ?? "?";
  const mode = fields.get("redis_mode") ?? "?";
  const detail = `Redis ${version}, ${mode} mode${mode === "cluster" ? " (keys share the {corral} hash tag: one slot)" : ""}`;
  if (version !== "?" && !versionAtLeast(version, MIN_REDIS)) {
    return {
      name: "redis server",
      level: "fail",
      detail: `${detail}: BullMQ needs ${MIN_REDIS} or newer`,
      fix: "upgrade Redis (7.x recommended; `docker run redis:7` or your distribution's redis-server)",
    };
  }
  return { name: "redis server", level: "ok", detail };
}
const MIN_NODE = [20, 19] as const;

/**
 * The three things about a Redis that decide whether accepted work survives: its eviction
 * policy (the scheduler refuses anything but noeviction), persistence, and memory used.
 */
export async function checkRedisSetup(url: string, tls: RedisTlsFiles, allowEviction: boolean): Promise<CheckResult[]> {
  const redis = connectRedis(url, tls, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => undefined); // reported through the promise below
  try {
    const findings = await guardRedis(redis, { allowEviction });
    const facts = findings.facts;
    const server = await redis.info("server").then(checkRedisServer, () => null);
    if (!facts) {
      const reason = findings.unreachable?.message ?? "unknown";
      return [
        {
          name: "redis setup",
          level: "warn",
          detail: `could not read Redis's settings: ${reason}`,
          fix: "allow this user INFO and CONFIG GET (a managed Redis may refuse CONFIG: check maxmemory-policy noeviction in its console)",
        },
      ];
    }
    const ratio = memoryUsedRatio(facts);
    const limit = facts.maxmemoryBytes > 0 ? "maxmemory" : "the host's memory (no maxmemory set)";
    const persistence = facts.aofEnabled
      ? "AOF on"
      : facts.rdbSnapshots === null
        ? "AOF off, RDB unknown (CONFIG refused)"
        : facts.rdbSnapshots
          ? "AOF off, RDB snapshots on"
          : "off";
    return [
      ...(server ? [server] : []),
      findings.refuse
        ? {
            name: "redis policy",
            level: "fail",
            detail: `maxmemory-policy ${facts.maxmemoryPolicy}: the scheduler refuses to start`,
            fix: "`redis-cli CONFIG SET maxmemory-policy noeviction` (and set it in redis.conf), or CORRAL_REDIS_ALLOW_EVICTION=true to accept losing jobs",
          }
        : {
            name: "redis policy",
            level: facts.maxmemoryPolicy === "noeviction" ? "ok" : "warn",
            detail: `maxmemory-policy ${facts.maxmemoryPolicy}`,
          },
      !facts.aofEnabled && facts.rdbSnapshots === false
        ? {
            name: "redis disk",
            level: "warn",
            detail: "persistence is off: a Redis restart loses every queued job",
            fix: "`appendonly yes` in redis.conf for production (fine as it is for `corral up` and tests)",
          }
        : { name: "redis disk", level: "ok", detail: `persistence: ${persistence}` },
      {
        name: "redis memory",
        level: ratio >= 0.9 ? "warn" : "ok",
        detail: `${(ratio * 100).toFixed(1)}% of ${limit} used`,
        ...(ratio >= 0.9 ? { fix: "raise maxmemory or let queues drain: at 100% Redis refuses new jobs" } : {}),
      },
    ];
  } finally {
    redis.disconnect();
  }
}

/** `node v20.19.0` passes; older fails. */
export function checkNodeVersion(version: string): CheckResult {
  const [major = 0, minor = 0] = version.replace(/^v/, "").split(".").map(Number);
  const ok = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  return ok
    ? { name: "node", level: "ok", detail: `Node ${version}` }
    : {
        name: "node",
        level: "fail",
        detail: `Node ${version} is too old`,
        fix: `install Node ${MIN_NODE.join(".")} or newer (https://nodejs.org, or \`nvm install 22\`)`,
      };
}

/** One line per check: `ok    redis  …` then an indented `fix:` line for problems. */
export function formatCheck(check: CheckResult): string {
  const line = `${check.level.padEnd(4)}  ${check.name.padEnd(12)}  ${check.detail}`;
  return check.fix ? `${line}\n${" ".repeat(20)}fix: ${check.fix}` : line;
}

/** `corral doctor`: what this machine has and lacks for running Corral. */
export function doctorCommand(ctx: CliContext): Command {
  const command = new Command("doctor")
    .description(
      "check Node, Redis, the models folder, nvidia-smi, the driver's CUDA against node-llama-cpp's CUDA build, each GPU, and which model fits which GPU, with a fix for each problem",
    )
    .option("--json", "print the checks as JSON (exit status as without)");
  const map = addEnvOptions(
    command,
    ctx.workerEnv.filter((spec) => DOCTOR_VARIABLES.has(spec.name)),
  );
  command.action(async (opts: { json?: boolean }) => {
    const { loadConfig, discoverGpus } = await import("@corral/worker");
    const env = envWithFlags(ctx.env, command, map);
    const config = loadOrExplain(loadConfig, env);
    const checks: CheckResult[] = [];
    const report = (check: CheckResult) => {
      checks.push(check);
      if (!opts.json) ctx.io.out(formatCheck(check));
    };

    report(checkNodeVersion(process.version));

    if (await pingRedis(config.redisUrl, 1000, config.redisTls)) {
      report({ name: "redis", level: "ok", detail: `Redis answers at ${redactUrl(config.redisUrl)}` });
      for (const check of await checkRedisSetup(config.redisUrl, config.redisTls, config.redisAllowEviction))
        report(check);
    } else {
      const server = findExecutable("redis-server", ctx.env.PATH);
      report({
        name: "redis",
        level: "warn",
        detail: `no Redis answers at ${redactUrl(config.redisUrl)}`,
        fix: server
          ? `start one (\`redis-server\`), or set --redis-url / CORRAL_REDIS_URL; \`corral up\` starts ${server} by itself`
          : REDIS_INSTALL_HINT,
      });
    }

    const models = await listGgufFiles(config.modelsDir);
    report(
      models.length > 0
        ? { name: "models", level: "ok", detail: `${models.length} .gguf in ${config.modelsDir}: ${models.join(", ")}` }
        : {
            name: "models",
            level: "warn",
            detail: `no .gguf model in ${config.modelsDir}`,
            fix: "`corral models pull hf:<owner>/<repo>:Q4_K_M`, copy .gguf files there, or set --models-dir / CORRAL_MODELS_DIR; `corral up --demo` downloads a tiny one",
          },
    );

    let gpuMode: "gpu" | "cpu" = "cpu";
    let discovery: Awaited<ReturnType<typeof discoverGpus>> | null = null;
    try {
      discovery = await discoverGpus({
        nvidiaSmiPath: config.nvidiaSmiPath,
        timeoutMs: config.nvidiaSmiTimeoutMs,
      });
      gpuMode = discovery.mode;
      report(
        discovery.mode === "gpu"
          ? {
              name: "gpus",
              level: "ok",
              detail: `${discovery.gpus.length} NVIDIA GPU(s): ${discovery.gpus.map((g) => `${g.index} ${g.name}`).join(", ")} (driver ${discovery.driverVersion ?? "?"}, CUDA ${discovery.cudaVersion ?? "?"})`,
            }
          : {
              name: "gpus",
              level: "warn",
              detail: `no NVIDIA GPU (${config.nvidiaSmiPath} not found or lists none): workers run in CPU mode`,
              fix: "for GPU mode install the NVIDIA driver (it brings nvidia-smi), or set --nvidia-smi / CORRAL_NVIDIA_SMI to its path (docs/gpu-setup.md)",
            },
      );
    } catch (error) {
      report({
        name: "gpus",
        level: "fail",
        detail: `nvidia-smi failed: ${(error as Error).message}`,
        fix: "run `nvidia-smi` by hand; a driver/library version mismatch usually needs a reboot or a driver reinstall (docs/gpu-setup.md#common-errors)",
      });
    }

    if (discovery?.mode === "gpu") {
      const binaries = await findCudaBinaries();
      report(checkCudaDriver(discovery.driverVersion, discovery.cudaVersion, binaries));
      const usable = usableCudaBinary(binaries, discovery.cudaVersion) ?? binaries[0] ?? null;
      for (const check of checkComputeCapability(discovery.gpus, usable)) report(check);
      report(await probeCudaBackend(usable, ctx.env));
      try {
        const catalog = await scanCatalog(config.modelsDir, catalogDefaults(ctx.env));
        for (const check of checkModelFit(catalog, discovery.gpus, config.reserveBytes)) report(check);
      } catch (error) {
        report({
          name: "model fit",
          level: "warn",
          detail: `could not read the catalog: ${(error as Error).message}`,
          fix: "fix models.yaml (the message names the field; docs/configuration.md#models-folder)",
        });
      }
    }

    report(await checkLlamaBackend(gpuMode));

    const failed = checks.filter((c) => c.level === "fail").length;
    const warned = checks.filter((c) => c.level === "warn").length;
    const summary =
      failed > 0
        ? `${failed} problem(s) to fix before Corral can run`
        : warned > 0
          ? `Corral can run (${warned} warning(s))`
          : "all good";
    ctx.io.out(opts.json ? JSON.stringify({ checks, failed, warned, summary }, null, 2) : summary);
    if (failed > 0) throw new ExitCode(1);
  });
  return command;
}

/** Which llama.cpp backend node-llama-cpp finds among its prebuilt binaries (never compiles). */
async function checkLlamaBackend(gpuMode: "gpu" | "cpu"): Promise<CheckResult> {
  try {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: "auto", build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
    try {
      const backend = llama.gpu === false ? "cpu" : llama.gpu;
      if (gpuMode === "gpu" && llama.gpu === false) {
        return {
          name: "llama.cpp",
          level: "warn",
          detail: "node-llama-cpp loaded the CPU backend although GPUs exist",
          fix: "install the CUDA prebuilt binaries (`npx --no node-llama-cpp inspect gpu` shows what is missing; usually the CUDA runtime libraries)",
        };
      }
      return { name: "llama.cpp", level: "ok", detail: `node-llama-cpp backend: ${backend} (${llama.buildType})` };
    } finally {
      await llama.dispose();
    }
  } catch (error) {
    return {
      name: "llama.cpp",
      level: "fail",
      detail: `node-llama-cpp has no usable prebuilt binary: ${(error as Error).message}`,
      fix: "reinstall dependencies (`npm ci`) on this platform; Corral never compiles llama.cpp at run time",
    };
  }
}
