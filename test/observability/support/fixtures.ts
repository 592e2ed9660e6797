import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { STORIES, repoRootDir, sharedModelsDir } from "../../support/models.js";

/** The model the observability tests run, and one with a 32-token context for a job that fails. */
export const MODEL = "stories";
export const SHORT_CONTEXT_MODEL = "stories-ctx32";

export const ADMIN_KEY = "obs-admin-key-0123456789abcdef";
export const TENANT_KEYS = { acme: "obs-acme-key-0123456789abcdef", globex: "obs-globex-key-0123456789abcde" };
export const API_KEYS = Object.entries(TENANT_KEYS)
  .map(([tenant, key]) => `${tenant}:${key}`)
  .join(",");

export interface ModelsDir {
  path: string;
  remove(): Promise<void>;
}

/**
 * A models folder with stories260K linked twice: `stories` (context 256) and
 * `stories-ctx32` (context 32, so a long prompt cannot fit).
 */
export async function makeModelsDir(): Promise<ModelsDir> {
  const path = await mkdtemp(join(tmpdir(), "corral-obs-models-"));
  const source = join(sharedModelsDir(), `${STORIES}.gguf`);
  await symlink(source, join(path, `${MODEL}.gguf`));
  await symlink(source, join(path, `${SHORT_CONTEXT_MODEL}.gguf`));
  await writeFile(
    join(path, "models.yaml"),
    [
      "models:",
      `  - file: ${MODEL}.gguf`,
      "    context_size: 256",
      "    sequences: 2",
      `  - file: ${SHORT_CONTEXT_MODEL}.gguf`,
      "    context_size: 32",
      "    sequences: 1",
      "",
    ].join("\n"),
  );
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** The stand-in nvidia-smi (real captured output, edited), and a spec file for it. */
export const fakeNvidiaSmi = resolve(repoRootDir, "test/support/fake-nvidia-smi.mjs");

export async function writeFakeGpuSpec(dir: string): Promise<string> {
  const path = join(dir, "fake-gpus.json");
  await writeFile(
    path,
    JSON.stringify({
      gpus: [
        {
          name: "NVIDIA H100 80GB HBM3",
          memory_total_mib: 81559,
          memory_used_mib: 2048,
          utilization_pct: 37,
          temperature_c: 52,
          power_w: 250.5,
        },
      ],
    }),
  );
  return path;
}

/** `POST /v1/jobs` as a tenant; returns the response status and body. */
export async function submitJob(
  baseUrl: string,
  key: string,
  body: Record<string, unknown>,
): Promise<{ status: number; body: { id?: string; status?: string } & Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}/v1/jobs`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { id?: string; status?: string } };
}

/** Long-polls a job until it is final (succeeded, failed or cancelled). */
export async function waitForJob(
  baseUrl: string,
  key: string,
  id: string,
  timeoutMs = 120_000,
): Promise<{ status: string } & Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${baseUrl}/v1/jobs/${id}?wait=20`, { headers: { authorization: `Bearer ${key}` } });
    const record = (await res.json()) as { status: string } & Record<string, unknown>;
    if (["succeeded", "failed", "cancelled"].includes(record.status)) return record;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${record.status} after ${timeoutMs} ms`);
  }
}
