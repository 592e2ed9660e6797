import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { SCHEDULER_ENV, loadConfig as loadSchedulerConfig } from "@corral/scheduler";
import { WORKER_ENV, loadConfig as loadWorkerConfig } from "@corral/worker";
import { repoRootDir } from "../support/models.js";

// What the deployment files (compose, systemd, Kubernetes) set must be what the code reads:
// a renamed variable or a bad value would otherwise only show on someone's cluster.

const deploy = join(repoRootDir, "deploy");
const read = (path: string) => readFileSync(join(deploy, path), "utf8");
/** Variables that are not Corral settings: the compose file's host folder, the CLI shim's switch. */
const NOT_SETTINGS = new Set(["CORRAL_MODELS", "CORRAL_SKIP_BUILD"]);
const known = new Set([...SCHEDULER_ENV, ...WORKER_ENV].map((v) => v.name));

const kubernetesFiles = readdirSync(join(deploy, "kubernetes")).filter((f) => f.endsWith(".yaml"));
/** Every Kubernetes object in deploy/kubernetes (the kustomization excepted). */
const objects = kubernetesFiles
  .filter((f) => f !== "kustomization.yaml")
  .flatMap((f) => parseAllDocuments(read(join("kubernetes", f))).map((doc) => ({ file: f, doc })));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any;
const object = (kind: string, name: string): Obj =>
  objects.map(({ doc }) => doc.toJS() as Obj).find((o) => o.kind === kind && o.metadata?.name === name);

/** `--flag value` pairs of a redis-server command line. */
const redisFlags = (args: readonly string[]): Map<string, string> => {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) if (args[i]!.startsWith("--")) flags.set(args[i]!.slice(2), args[i + 1] ?? "");
  return flags;
};

describe("deployment files", () => {
  test("Redis runs with a maxmemory and the noeviction policy, in compose and in Kubernetes (under its memory limit)", () => {
    const compose = parseAllDocuments(read("docker-compose.yml"))[0]!.toJS() as Obj;
    const composeFlags = redisFlags(compose.services.redis.command);
    assert.equal(composeFlags.get("maxmemory-policy"), "noeviction");
    assert.match(composeFlags.get("maxmemory") ?? "", /^\$\{REDIS_MAXMEMORY:-\d+[kmg]b\}$/);

    const redis = object("StatefulSet", "corral-redis").spec.template.spec.containers[0];
    const flags = redisFlags(redis.args);
    assert.equal(flags.get("maxmemory-policy"), "noeviction");
    const mib = (value: string): number => {
      const [, n, unit] = /^(\d+)(mb|gb|Mi|Gi)$/.exec(value) ?? [];
      assert.ok(n && unit, `a size in mb/gb/Mi/Gi: ${value}`);
      return Number(n) * (unit === "gb" || unit === "Gi" ? 1024 : 1);
    };
    const maxmemory = mib(flags.get("maxmemory") ?? "");
    const limit = mib(redis.resources.limits.memory);
    assert.ok(maxmemory <= limit / 2 + 512, `maxmemory ${maxmemory} MiB leaves room under the ${limit} MiB limit`);
  });

  test("every CORRAL_* variable they name is one the scheduler or worker reads", () => {
    const files = [
      "docker-compose.yml",
      ...readdirSync(join(deploy, "systemd")).map((f) => join("systemd", f)),
      ...kubernetesFiles.map((f) => join("kubernetes", f)),
    ];
    for (const file of files) {
      for (const name of read(file).match(/\bCORRAL_[A-Z_]+\b/g) ?? []) {
        if (NOT_SETTINGS.has(name)) continue;
        assert.ok(known.has(name), `${file} names ${name}, which no Corral process reads`);
      }
    }
  });

  test("the Kubernetes files parse, each object has a kind, an apiVersion and a name, and kustomization lists them all", () => {
    for (const { file, doc } of objects) {
      assert.deepEqual(doc.errors, [], `${file}: ${doc.errors.join("; ")}`);
      const o = doc.toJS() as Obj;
      assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${file}: ${JSON.stringify(o).slice(0, 100)}`);
    }
    const kustomization = parseAllDocuments(read("kubernetes/kustomization.yaml"))[0]!.toJS() as Obj;
    assert.deepEqual(
      [...kustomization.resources].sort(),
      kubernetesFiles.filter((f) => f !== "kustomization.yaml").sort(),
    );
  });

  test("the Kubernetes settings and the systemd environment example load as real configurations", () => {
    const configMap = object("ConfigMap", "corral-config").data as Record<string, string>;
    const scheduler = object("Deployment", "corral-scheduler").spec.template.spec.containers[0];
    const worker = object("DaemonSet", "corral-worker").spec.template.spec.containers[0];
    const envOf = (container: Obj) =>
      Object.fromEntries(
        (container.env as Obj[]).filter((e) => e.value !== undefined).map((e) => [e.name, String(e.value)]),
      );
    const keys = { CORRAL_API_KEYS: "lab-a:sk-0123456789abcdef", CORRAL_ADMIN_KEY: "sk-admin-0123456789abcdef" };
    const schedulerConfig = loadSchedulerConfig({ ...configMap, ...envOf(scheduler), ...keys });
    assert.equal(schedulerConfig.port, 8080);
    assert.equal(schedulerConfig.host, "0.0.0.0");
    const workerConfig = loadWorkerConfig({ ...configMap, ...envOf(worker), CORRAL_WORKER_ID: "gpu-node-1" });
    assert.equal(workerConfig.metricsPort, 9464);
    // Probes and scrape annotations point at the ports the processes listen on.
    assert.equal(scheduler.ports[0].containerPort, schedulerConfig.port);
    assert.equal(worker.ports[0].containerPort, workerConfig.metricsPort);
    assert.deepEqual([scheduler.args, worker.args], [["scheduler"], ["worker"]]);

    const envFile = Object.fromEntries(
      read("systemd/corral.env.example")
        .split("\n")
        .filter((line) => /^CORRAL_[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    // The sample keys are placeholders the scheduler refuses; with real keys in their place, it loads.
    const keysFile = envFileOf("systemd/scheduler.env.example");
    const realKeys = Object.fromEntries(
      Object.entries(keysFile).map(([name, value]) => [name, value.replaceAll("change-me", "0a1b2c3d")]),
    );
    assert.equal(loadSchedulerConfig({ ...envFile, ...realKeys }).apiKeys.length, 2);
    assert.equal(loadWorkerConfig(envFile).metricsPort, 9464);
  });

  test("the systemd units run the corral command's scheduler and worker", () => {
    assert.match(read("systemd/corral-scheduler.service"), /^ExecStart=.*apps\/cli\/bin\/corral\.js scheduler$/m);
    assert.match(read("systemd/corral-worker.service"), /^ExecStart=.*apps\/cli\/bin\/corral\.js worker$/m);
  });
});

describe("deployment defaults are safe", () => {
  const compose = () => parseAllDocuments(read("docker-compose.yml"))[0]!.toJS() as Obj;

  test("compose requires CORRAL_API_KEYS: no default that leaves the API open", () => {
    const keys = String(compose().services.scheduler.environment.CORRAL_API_KEYS);
    assert.match(keys, /^\$\{CORRAL_API_KEYS:\?.+\}$/);
  });
});

describe("deployment defaults are safe: monitoring, sample keys, units, pods", () => {
  const compose = () => parseAllDocuments(read("docker-compose.yml"))[0]!.toJS() as Obj;

  test("compose publishes Grafana and Prometheus on loopback only, needs a Grafana password, and has no lifecycle API", () => {
    const services = compose().services;
    for (const name of ["grafana", "prometheus"]) {
      for (const mapping of services[name].ports as string[])
        assert.match(mapping, /^127\.0\.0\.1:/, `${name}: ${mapping}`);
    }
    assert.match(
      String(services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD),
      /^\$\{GRAFANA_ADMIN_PASSWORD:\?.+\}$/,
    );
    assert.ok(!(services.prometheus.command as string[]).includes("--web.enable-lifecycle"));
  });

  test("the sample keys in the systemd examples do not pass validation", () => {
    const env = envFileOf("systemd/scheduler.env.example");
    assert.ok(env.CORRAL_API_KEYS, "the example shows the keys' format");
    assert.throws(() => loadSchedulerConfig(env), /CORRAL_API_KEYS: .*placeholder/);
    assert.throws(
      () => loadSchedulerConfig({ ...env, CORRAL_API_KEYS: "lab-a:sk-0123456789abcdef" }),
      /CORRAL_ADMIN_KEY: .*placeholder/,
    );
  });

  test("the worker's unit does not read the tenants' keys; only the scheduler's does", () => {
    const environmentFiles = (unit: string) =>
      read(unit)
        .split("\n")
        .filter((line) => line.startsWith("EnvironmentFile="));
    assert.ok(environmentFiles("systemd/corral-scheduler.service").some((l) => l.includes("scheduler.env")));
    assert.ok(!environmentFiles("systemd/corral-worker.service").some((l) => l.includes("scheduler.env")));
    const shared = envFileOf("systemd/corral.env.example");
    assert.equal(shared.CORRAL_API_KEYS, undefined);
    assert.equal(shared.CORRAL_ADMIN_KEY, undefined);
  });

  test("every Kubernetes pod runs as non-root, without privilege escalation or capabilities, on a read-only root", () => {
    for (const kind of ["Deployment", "DaemonSet", "StatefulSet"]) {
      for (const { doc } of objects) {
        const o = doc.toJS() as Obj;
        if (o.kind !== kind) continue;
        const pod = o.spec.template.spec;
        for (const container of pod.containers as Obj[]) {
          const context = { ...pod.securityContext, ...container.securityContext };
          const where = `${o.metadata.name}/${container.name}`;
          assert.equal(context.runAsNonRoot, true, where);
          assert.equal(context.allowPrivilegeEscalation, false, where);
          assert.equal(context.readOnlyRootFilesystem, true, where);
          assert.deepEqual(context.capabilities?.drop, ["ALL"], where);
        }
      }
    }
  });
});

describe("Redis is protected in the Kubernetes manifests", () => {
  const secretEnv = (container: Obj, name: string) =>
    (container.env as Obj[]).find((e) => e.name === name)?.valueFrom?.secretKeyRef as
      { name: string; key: string } | undefined;

  test("Redis requires the password from the corral-redis Secret; the scheduler and workers read CORRAL_REDIS_URL from it", () => {
    const redis = object("StatefulSet", "corral-redis").spec.template.spec.containers[0];
    assert.deepEqual(secretEnv(redis, "REDIS_PASSWORD"), { name: "corral-redis", key: "REDIS_PASSWORD" });
    assert.deepEqual(secretEnv(redis, "REDISCLI_AUTH"), { name: "corral-redis", key: "REDIS_PASSWORD" });
    assert.match([...(redis.command ?? []), ...redis.args].join(" "), /--requirepass "\$REDIS_PASSWORD"/);
    assert.equal(
      object("ConfigMap", "corral-config").data.CORRAL_REDIS_URL,
      undefined,
      "no Redis URL in the ConfigMap",
    );
    for (const [kind, name] of [
      ["Deployment", "corral-scheduler"],
      ["DaemonSet", "corral-worker"],
    ] as const) {
      const container = object(kind, name).spec.template.spec.containers[0];
      assert.deepEqual(
        secretEnv(container, "CORRAL_REDIS_URL"),
        { name: "corral-redis", key: "CORRAL_REDIS_URL" },
        name,
      );
    }
    assert.match(read("kubernetes/kustomization.yaml"), /kubectl -n corral create secret generic corral-redis/);
  });

  test("NetworkPolicies deny by default, let only the scheduler and workers reach Redis, and open only the API and metrics ports", () => {
    const policies = objects.map(({ doc }) => doc.toJS() as Obj).filter((o) => o.kind === "NetworkPolicy");
    const deny = policies.find((p) => Object.keys(p.spec.podSelector).length === 0);
    assert.ok(deny, "a default-deny policy selects every pod");
    assert.deepEqual(deny.spec.policyTypes, ["Ingress"]);
    assert.equal(deny.spec.ingress, undefined, "it allows nothing");
    const forPod = (name: string) =>
      policies.filter((p) => p.spec.podSelector.matchLabels?.["app.kubernetes.io/name"] === name);
    const [redis] = forPod("corral-redis");
    assert.ok(redis, "a policy for Redis");
    assert.equal(redis.spec.ingress.length, 1);
    const sources = (redis.spec.ingress[0].from as Obj[]).map(
      (f) => f.podSelector?.matchLabels?.["app.kubernetes.io/name"],
    );
    assert.deepEqual(sources.sort(), ["corral-scheduler", "corral-worker"]);
    assert.deepEqual(redis.spec.ingress[0].ports, [{ protocol: "TCP", port: 6379 }]);
    const ports = (name: string) => forPod(name).flatMap((p) => p.spec.ingress.flatMap((rule: Obj) => rule.ports));
    assert.deepEqual(ports("corral-scheduler"), [{ protocol: "TCP", port: 8080 }]);
    assert.deepEqual(ports("corral-worker"), [{ protocol: "TCP", port: 9464 }]);
  });
});

/** The `CORRAL_*=value` lines of an env file under deploy/. */
function envFileOf(path: string): Record<string, string> {
  return Object.fromEntries(
    read(path)
      .split("\n")
      .filter((line) => /^CORRAL_[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}
