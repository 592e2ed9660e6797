import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitForExit } from "../../../../test/support/processes.js";

// A slot sending to a supervisor that was just SIGKILLed used to crash on the EPIPE (an
// 'error' event on `process`) instead of draining through its 'disconnect' handler, and
// left its heartbeat behind. Here a child sends as fast as it can while its parent kills
// itself; it must exit through 'disconnect' every time.

const CHILD = `
import { writeFileSync } from "node:fs";
const [out, channel] = process.argv.slice(2);
const { sendToSupervisor } = await import(channel);
process.on("disconnect", () => {
  writeFileSync(out, "disconnect");
  process.exit(0);
});
const pad = "x".repeat(4096);
const spam = () => {
  for (let i = 0; i < 20; i++) sendToSupervisor({ type: "ready", pad });
  setImmediate(spam);
};
spam();
`;

const PARENT = `
import { fork } from "node:child_process";
import { writeFileSync } from "node:fs";
const [child, out, channel, pidFile] = process.argv.slice(2);
const forked = fork(child, [out, channel], { stdio: ["ignore", "ignore", "inherit", "ipc"], execArgv: ["--import", "tsx"] });
writeFileSync(pidFile, String(forked.pid));
forked.once("message", () => process.kill(process.pid, "SIGKILL"));
`;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-ipc-"));
  await writeFile(join(dir, "child.mjs"), CHILD);
  await writeFile(join(dir, "parent.mjs"), PARENT);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("a slot whose supervisor dies mid-send stops through 'disconnect' instead of crashing on EPIPE", async () => {
  const channel = new URL("./supervisor-channel.ts", import.meta.url).href;
  for (let run = 0; run < 5; run++) {
    const out = join(dir, `out-${run}`);
    const pidFile = join(dir, `pid-${run}`);
    const parent = spawn(process.execPath, [join(dir, "parent.mjs"), join(dir, "child.mjs"), out, channel, pidFile], {
      cwd: fileURLToPath(new URL("../../../..", import.meta.url)),
      stdio: ["ignore", "ignore", "inherit"],
    });
    const [, signal] = (await once(parent, "exit")) as [number | null, NodeJS.Signals | null];
    assert.equal(signal, "SIGKILL", "the parent died abruptly");
    const pid = Number(await readFile(pidFile, "utf8"));
    assert.equal(await waitForExit(pid, 5000), true, "the child exited");
    assert.equal(await readFile(out, "utf8").catch(() => "crashed"), "disconnect", `run ${run}`);
  }
});
