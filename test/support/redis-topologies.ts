import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import { Redis } from "ioredis";
import { waitForRedis } from "./redis.js";

/**
 * Throwaway Redis topologies on loopback ports for the fault suite: a Sentinel set
 * (master, replica, three sentinels), a Cluster (three masters, three replicas) and a
 * single node with AOF. Each lives in its own temp folder; `stop()` SIGKILLs every
 * process it started and removes the folder, and is safe to call twice.
 */

export interface RedisNodeProcess {
  port: number;
  process: ChildProcess;
  /** Restarts the node with the same config (same port, same data folder). */
  restart(): Promise<void>;
}

interface Started {
  dir: string;
  children: Set<ChildProcess>;
}

async function startedIn(label: string): Promise<Started> {
  return { dir: await mkdtemp(join(tmpdir(), `corral-${label}-`)), children: new Set() };
}

function spawnRedis(started: Started, args: string[]): ChildProcess {
  const child = spawn("redis-server", args, { stdio: "ignore" });
  started.children.add(child);
  child.once("exit", () => started.children.delete(child));
  return child;
}

async function stopAll(started: Started): Promise<void> {
  const exits = [...started.children].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  );
  await Promise.all(exits);
  await rm(started.dir, { recursive: true, force: true });
}

/** SIGKILLs a child and waits for it to be gone. */
export function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

async function startNode(started: Started, name: string, lines: string[]): Promise<RedisNodeProcess> {
  const port = await getPort({ host: "127.0.0.1" });
  const nodeDir = join(started.dir, name);
  execFileSync("mkdir", ["-p", nodeDir]);
  const conf = join(nodeDir, "redis.conf");
  await writeFile(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      "protected-mode no",
      `dir ${nodeDir}`,
      'save ""',
      "appendonly no",
      "maxmemory-policy noeviction",
      ...lines,
    ].join("\n") + "\n",
  );
  const node: RedisNodeProcess = {
    port,
    process: spawnRedis(started, [conf]),
    async restart() {
      await killHard(node.process);
      node.process = spawnRedis(started, [conf]);
      await waitForRedis(`redis://127.0.0.1:${port}`, 10_000);
    },
  };
  await waitForRedis(`redis://127.0.0.1:${port}`, 10_000);
  return node;
}

export interface SentinelSet {
  /** `redis+sentinel://127.0.0.1:p1,…/corral-master` */
  url: string;
  masterName: string;
  master: RedisNodeProcess;
  replica: RedisNodeProcess;
  sentinelPorts: number[];
  /** The port of the master the sentinels name now. */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A master, one replica and three sentinels (quorum 2), all on loopback. Sentinels mark
 * the master down after `downAfterMs` (default 1 s) and fail over at once.
 */
export async function startSentinelSet(options: { downAfterMs?: number } = {}): Promise<SentinelSet> {
  const started = await startedIn("sentinel");
  const masterName = "corral-master";
  try {
    const master = await startNode(started, "master", []);
    const replica = await startNode(started, "replica", [`replicaof 127.0.0.1 ${master.port}`]);
    await waitForReplication(master.port, 1);
    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await getPort({ host: "127.0.0.1" });
      const conf = join(started.dir, `sentinel-${i}.conf`);
      await writeFile(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          "protected-mode no",
          `dir ${started.dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${masterName} 10000`,
          `sentinel parallel-syncs ${masterName} 1`,
        ].join("\n") + "\n",
      );
      spawnRedis(started, [conf, "--sentinel"]);
      sentinelPorts.push(port);
      await waitForRedis(`redis://127.0.0.1:${port}`, 10_000);
    }
    // Wait until every sentinel knows the replica and the other sentinels, so a failover can happen.
    const deadline = Date.now() + 30_000;
    for (;;) {
      let ready = 0;
      for (const port of sentinelPorts) {
        const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1 });
        client.on("error", () => undefined);
        try {
          const info = (await client.call("SENTINEL", "MASTER", masterName)) as string[];
          const field = (name: string) => Number(info[info.indexOf(name) + 1]);
          if (field("num-slaves") >= 1 && field("num-other-sentinels") >= 2) ready++;
        } catch {
          // not up yet
        } finally {
          client.disconnect();
        }
      }
      if (ready === sentinelPorts.length) break;
      if (Date.now() > deadline) throw new Error("the sentinels did not discover each other within 30 s");
      await new Promise((r) => setTimeout(r, 200));
    }
    return {
      url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(",")}/${masterName}`,
      masterName,
      master,
      replica,
      sentinelPorts,
      async currentMasterPort() {
        const client = new Redis({ port: sentinelPorts[0]!, host: "127.0.0.1", maxRetriesPerRequest: 1 });
        client.on("error", () => undefined);
        try {
          const [, port] = (await client.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)) as string[];
          return Number(port);
        } finally {
          client.disconnect();
        }
      },
      stop: () => stopAll(started),
    };
  } catch (error) {
    await stopAll(started);
    throw error;
  }
}

async function waitForReplication(masterPort: number, replicas: number): Promise<void> {
  const client = new Redis({ port: masterPort, host: "127.0.0.1", maxRetriesPerRequest: 1 });
  client.on("error", () => undefined);
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const info = await client.info("replication");
      const online = info.split("\n").filter((line) => /^slave\d+:.*state=online/.test(line)).length;
      if (online >= replicas) return;
      if (Date.now() > deadline) throw new Error(`replication to ${replicas} replica(s) not online within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.disconnect();
  }
}

export interface ClusterSet {
  /** `redis+cluster://127.0.0.1:p1,…` */
  url: string;
  nodes: RedisNodeProcess[];
  /** The node that is master of `key`'s slot now. */
  masterOf(key: string): Promise<RedisNodeProcess>;
  stop(): Promise<void>;
}

/** Three masters and three replicas (`redis-cli --cluster create … --cluster-replicas 1`). */
export async function startCluster(options: { nodeTimeoutMs?: number } = {}): Promise<ClusterSet> {
  const started = await startedIn("cluster");
  try {
    const nodes: RedisNodeProcess[] = [];
    for (let i = 0; i < 6; i++) {
      nodes.push(
        await startNode(started, `node-${i}`, [
          "cluster-enabled yes",
          `cluster-config-file nodes-${i}.conf`,
          `cluster-node-timeout ${options.nodeTimeoutMs ?? 2000}`,
          "cluster-require-full-coverage yes",
          // A replica may take over however long it was cut off (the test kills masters outright).
          "cluster-replica-validity-factor 0",
        ]),
      );
    }
    execFileSync(
      "redis-cli",
      ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", "1", "--cluster-yes"],
      { stdio: "ignore", timeout: 60_000 },
    );
    // Until every node agrees the cluster is ok, and every replica is in sync.
    const deadline = Date.now() + 60_000;
    for (;;) {
      let ok = 0;
      for (const node of nodes) {
        const client = new Redis({ port: node.port, host: "127.0.0.1", maxRetriesPerRequest: 1 });
        client.on("error", () => undefined);
        try {
          const info = (await client.call("CLUSTER", "INFO")) as string;
          const replication = await client.info("replication");
          const synced = !/role:slave/.test(replication) || /master_link_status:up/.test(replication);
          if (/cluster_state:ok/.test(info) && synced) ok++;
        } finally {
          client.disconnect();
        }
      }
      if (ok === nodes.length) break;
      if (Date.now() > deadline) throw new Error("the cluster did not settle within 60 s");
      await new Promise((r) => setTimeout(r, 200));
    }
    return {
      url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(",")}`,
      nodes,
      async masterOf(key: string) {
        const client = new Redis({ port: nodes[0]!.port, host: "127.0.0.1", maxRetriesPerRequest: 1 });
        client.on("error", () => undefined);
        try {
          const slot = Number(await client.call("CLUSTER", "KEYSLOT", key));
          const ranges = (await client.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
          const range = ranges.find(([from, to]) => slot >= from && slot <= to);
          if (!range) throw new Error(`no node serves slot ${slot}`);
          const port = Number(range[2][1]);
          return nodes.find((n) => n.port === port)!;
        } finally {
          client.disconnect();
        }
      },
      stop: () => stopAll(started),
    };
  } catch (error) {
    await stopAll(started);
    throw error;
  }
}

export interface ReplicatedRedis {
  /** The master's `redis://127.0.0.1:<port>`. */
  url: string;
  master: RedisNodeProcess;
  replicas: RedisNodeProcess[];
  stop(): Promise<void>;
}

/** A master and `replicas` replicas (`replicaof`), no sentinels, no persistence; resolves once every replica is online. */
export async function startReplicated(replicas = 1): Promise<ReplicatedRedis> {
  const started = await startedIn("replicated");
  try {
    const master = await startNode(started, "master", []);
    const nodes: RedisNodeProcess[] = [];
    for (let i = 0; i < replicas; i++)
      nodes.push(await startNode(started, `replica-${i}`, [`replicaof 127.0.0.1 ${master.port}`]));
    await waitForReplication(master.port, replicas);
    return { url: `redis://127.0.0.1:${master.port}`, master, replicas: nodes, stop: () => stopAll(started) };
  } catch (error) {
    await stopAll(started);
    throw error;
  }
}

export interface AofRedis {
  url: string;
  node: RedisNodeProcess;
  stop(): Promise<void>;
}

/** One Redis with `appendonly yes` and `appendfsync always`: a SIGKILL loses no acknowledged write. */
export async function startAofRedis(): Promise<AofRedis> {
  const started = await startedIn("aof");
  try {
    const node = await startNode(started, "node", ["appendonly yes", "appendfsync always"]);
    return { url: `redis://127.0.0.1:${node.port}`, node, stop: () => stopAll(started) };
  } catch (error) {
    await stopAll(started);
    throw error;
  }
}
