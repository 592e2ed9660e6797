import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import type { GpuInfo } from "@corral/shared";
import {
  checkComputeCapability,
  checkCudaDriver,
  checkRedisServer,
  findCudaBinaries,
  missingLibraries,
  readElfDynamic,
  type CudaBinary,
} from "@corral/cli";
import { discoverGpus } from "@corral/worker";
import { repoRootDir, sharedModelsDir } from "../support/models.js";
import { testRedis } from "../support/redis.js";
import { corralEnv, runCorral, STACK_LINE } from "./run-corral.js";

const GPU_SETUP = readFileSync(resolve(repoRootDir, "docs/gpu-setup.md"), "utf8");
const FAKE_NVIDIA_SMI = resolve(repoRootDir, "test/support/fake-nvidia-smi.mjs");
const CUDA_LIB = resolve(
  repoRootDir,
  "node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/libggml-cuda.so",
);
const noCudaBuild = !existsSync(CUDA_LIB) && "node-llama-cpp's CUDA build is not installed here";

const binary = (
  cudaMajor: number,
  architectures: number[] = [],
  pkg = "@node-llama-cpp/linux-x64-cuda",
): CudaBinary => ({
  package: pkg,
  version: "3.21.1",
  library: "/x/libggml-cuda.so",
  cudaMajor,
  architectures,
  needed: [],
});
const MAIN = binary(13, [75, 80, 86, 89, 90, 120, 121]);
const FALLBACK = binary(12, [], "@node-llama-cpp/linux-x64-cuda-ext");

/** GPUs as the worker discovers them from the stand-in nvidia-smi (real captured output, edited by a spec). */
async function gpusFrom(
  dir: string,
  spec: object,
): Promise<{ gpus: GpuInfo[]; driverVersion: string | null; cudaVersion: string | null }> {
  const path = join(dir, `spec-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, JSON.stringify(spec));
  return discoverGpus({
    nvidiaSmiPath: FAKE_NVIDIA_SMI,
    timeoutMs: 10_000,
    env: { ...process.env, CORRAL_FAKE_NVIDIA_SMI_SPEC: path },
  });
}

describe("corral doctor: CUDA", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-doctor-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test(
    "the installed CUDA builds are read from their ELF headers: the CUDA runtime they link and their GPU targets",
    { skip: noCudaBuild },
    async () => {
      const elf = await readElfDynamic(CUDA_LIB);
      assert.ok(elf.needed.includes("libcuda.so.1"), elf.needed.join(", "));
      const builds = await findCudaBinaries();
      assert.deepEqual(
        builds.map((b) => [b.package, b.cudaMajor]),
        [
          ["@node-llama-cpp/linux-x64-cuda", 13],
          ["@node-llama-cpp/linux-x64-cuda-ext", 12],
        ],
      );
      assert.deepEqual(builds[0]!.architectures, [75, 80, 86, 89, 90, 120, 121]);
      // docs/gpu-setup.md states these figures: they must be what the installed builds say.
      for (const build of builds) {
        assert.match(
          GPU_SETUP,
          new RegExp(`\`${build.package}\`\\s*\\|\\s*\`libcudart\\.so\\.${build.cudaMajor}\``),
          build.package,
        );
      }
      assert.match(
        GPU_SETUP,
        new RegExp(builds[0]!.architectures.map((a) => `\`sm_${a}\``).join(",?\\s+(?:and\\s+)?")),
      );
      await assert.rejects(readElfDynamic(join(sharedModelsDir(), "stories260K.gguf")), /not an ELF file/);
    },
  );

  test("the driver's CUDA version (from the real nvidia-smi table) against each build's", async () => {
    const h100 = await gpusFrom(dir, { gpus: [{}] }); // the captured H100: driver 590.48.01, table says CUDA 12.4
    assert.equal(h100.cudaVersion, "12.4");
    const fallback = checkCudaDriver(h100.driverVersion, h100.cudaVersion, [MAIN, FALLBACK]);
    assert.equal(fallback.level, "warn");
    assert.match(
      fallback.detail,
      /driver 590\.48\.01 supports CUDA 12\.4; .*falls back to @node-llama-cpp\/linux-x64-cuda-ext \(CUDA 12\)/,
    );
    const current = await gpusFrom(dir, { gpus: [{}], cuda_version: "13.0" });
    assert.equal(checkCudaDriver(current.driverVersion, current.cudaVersion, [MAIN, FALLBACK]).level, "ok");
    const old = checkCudaDriver("470.82.01", "11.4", [MAIN, FALLBACK]);
    assert.equal(old.level, "fail");
    assert.match(old.fix ?? "", /CUDA Version 13\.0 or newer/);
    const none = checkCudaDriver("590.48.01", "13.0", []);
    assert.equal(none.level, "fail");
    assert.match(none.fix ?? "", /@node-llama-cpp\/linux-x64-cuda@3\.21\.1/);
    const unknown = await gpusFrom(dir, { gpus: [{}], cuda_version: null });
    assert.equal(unknown.cudaVersion, null);
    assert.equal(checkCudaDriver(unknown.driverVersion, unknown.cudaVersion, [MAIN]).level, "warn");
  });

  test("compute capability against the build's targets: older fails with a fix, newer runs the nearest older code", async () => {
    const found = await gpusFrom(dir, {
      gpus: [
        {},
        { name: "Tesla P100-PCIE-16GB", fields: { compute_cap: "6.0" } },
        { name: "Jetson", fields: { compute_cap: "8.7" } },
        { fields: { compute_cap: "[N/A]" } },
      ],
    });
    const checks = checkComputeCapability(found.gpus, MAIN);
    assert.deepEqual(
      checks.map((c) => c.level),
      ["ok", "fail", "ok", "warn"],
    );
    assert.match(checks[0]!.detail, /compute capability 9\.0, built for sm_90/);
    assert.match(checks[1]!.detail, /Tesla P100.*6\.0, older than the CUDA build's oldest target sm_75/);
    assert.match(checks[1]!.fix ?? "", /node-llama-cpp source build --gpu cuda/);
    assert.match(checks[2]!.detail, /runs the sm_86 code/);
  });

  test("the libraries a CUDA build links are looked up where the loader looks", () => {
    const libDir = dir;
    return writeFile(join(libDir, "libcudart.so.13"), "").then(() =>
      assert.deepEqual(missingLibraries(["libcudart.so.13", "libcublas.so.13", "libstdc++.so.6"], [libDir]), [
        "libcublas.so.13",
      ]),
    );
  });

  test("Redis's version and mode come from the real server; an old one fails", async () => {
    const { url } = await testRedis();
    const redis = new Redis(url, { lazyConnect: true });
    try {
      await redis.connect();
      const check = checkRedisServer(await redis.info("server"));
      assert.equal(check.level, "ok");
      assert.match(check.detail, /^Redis \d+\.\d+\.\d+, standalone mode$/);
    } finally {
      redis.disconnect();
    }
    const old = checkRedisServer("# Server\r\nredis_version:4.0.9\r\nredis_mode:standalone\r\n");
    assert.equal(old.level, "fail");
    assert.match(old.detail, /BullMQ needs 5\.0\.0/);
  });

  test("corral doctor --json: the CUDA probe fails as a finding, not a crash, and each model's fit on each GPU and MIG instance", async () => {
    // GPU 0: 180 MiB (about 165 MiB after the 8 % reserve): llama-2-tiny-random (160 MiB at 4096 × 4) fits, stories260K (187 MiB) does not.
    const spec = join(dir, "doctor-spec.json");
    await writeFile(
      spec,
      JSON.stringify({ gpus: [{ name: "Small GPU", memory_total_mib: 180 }, { mig: ["3g.40gb", "1g.10gb"] }] }),
    );
    const env = corralEnv({ CORRAL_FAKE_NVIDIA_SMI_SPEC: spec, CORRAL_REDIS_URL: (await testRedis()).url });
    const { code, stdout, stderr } = await runCorral(
      ["doctor", "--json", "--nvidia-smi", FAKE_NVIDIA_SMI, "--models-dir", sharedModelsDir()],
      env,
    );
    assert.doesNotMatch(stderr, STACK_LINE);
    const report = JSON.parse(stdout) as {
      checks: { name: string; level: string; detail: string; fix?: string }[];
      failed: number;
    };
    const byName = (name: string) => report.checks.filter((c) => c.name === name);
    assert.equal(byName("cuda driver")[0]?.level, "warn"); // the captured table says CUDA 12.4
    const probe = byName("cuda backend")[0]!;
    assert.equal(probe.level, "fail", "there is no GPU here: the CUDA backend cannot load");
    assert.match(probe.detail, /^getLlama\(\{gpu: "cuda", build: "never"\}\) failed: /);
    assert.ok(probe.fix);
    assert.equal(code, 1);
    assert.ok(report.failed >= 1);
    // The shared models folder also holds whisper.cpp's test models (whisper/): named as such, with no context.
    const all = byName("model fit").map((c) => c.detail);
    const whisper = all.filter((detail) => detail.startsWith("for-tests-ggml-tiny"));
    assert.equal(whisper.length, 2);
    for (const detail of whisper) assert.match(detail, /^for-tests-ggml-tiny(\.en)? \(Whisper\) needs \d+ MiB: fits /);
    const fit = all.filter((detail) => !detail.startsWith("for-tests-ggml-tiny"));
    assert.equal(fit.length, 2);
    assert.match(
      fit[0]!,
      /^llama-2-tiny-random needs 160 MiB \(context 4096 × 4 sequences\): fits GPU 0, GPU 1 MIG 3g\.40gb, GPU 1 MIG 1g\.10gb$/,
    );
    assert.match(
      fit[1]!,
      /^stories260K needs 187 MiB \(context 2048 × 4 sequences\): fits GPU 1 MIG 3g\.40gb, GPU 1 MIG 1g\.10gb$/,
    );
    assert.match(byName("redis server")[0]?.detail ?? "", /^Redis /);
    // docs/gpu-setup.md's table names every check doctor printed.
    for (const { name } of report.checks) {
      assert.ok(
        GPU_SETUP.includes(`| \`${name.replace(/^gpu \d+ arch$/, "gpu N arch")}\``),
        `gpu-setup.md lists ${name}`,
      );
    }

    await writeFile(spec, JSON.stringify({ gpus: [{ name: "Small GPU", memory_total_mib: 180 }] }));
    const small = await runCorral(["doctor", "--nvidia-smi", FAKE_NVIDIA_SMI, "--models-dir", sharedModelsDir()], env);
    assert.match(
      small.stdout,
      /^warn {2}model fit {5}stories260K needs 187 MiB .*: fits no GPU \(the largest, GPU 0, has 166 MiB after the reserve\); its jobs would wait$/m,
    );
    assert.match(small.stdout, /fix: pull a smaller quantization/);
  });
});
