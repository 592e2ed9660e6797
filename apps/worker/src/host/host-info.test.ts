import assert from "node:assert/strict";
import os from "node:os";
import { test } from "node:test";
import { HostInfo } from "@corral/shared";
import { hostInfo } from "./host-info.js";

test("hostInfo describes this machine's CPU, memory and OS", async () => {
  const info = HostInfo.parse(await hostInfo());
  assert.ok(info.cpu_model.length > 0);
  assert.ok(info.cpu_cores >= 1);
  assert.equal(info.cpu_cores, os.cpus().length);
  // systeminformation and node read the same /proc/meminfo total (within a page of rounding).
  assert.ok(Math.abs(info.memory_total_bytes - os.totalmem()) < 64 * 1024 * 1024);
  assert.ok(info.memory_free_bytes > 0 && info.memory_free_bytes <= info.memory_total_bytes);
  assert.ok(info.os.includes(os.platform()), `os ${JSON.stringify(info.os)} names the platform`);
  assert.ok(info.hostname.length > 0);
});
