import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MigInstance } from "@corral/shared";
import { NvidiaSmiParseError } from "./errors.js";
import { migProfileMemoryBytes, parseListGpus, parseMigProfile } from "./parse-list-gpus.js";
import { realFixture } from "./test-support/fixtures.js";

describe("parseListGpus on real captures", () => {
  test("H100 with MIG: one GPU, four MIG devices with profiles and sizes from the profile", () => {
    const gpus = parseListGpus(realFixture("h100-mig_list-gpus.txt"));
    assert.equal(gpus.length, 1);
    const [gpu] = gpus;
    assert.equal(gpu!.index, 0);
    assert.equal(gpu!.name, "NVIDIA H100 80GB HBM3");
    assert.equal(gpu!.uuid, "GPU-00000000-0000-0000-0000-000000000000");
    assert.deepEqual(gpu!.mig_instances, [
      {
        uuid: "MIG-00000000-0000-0000-0000-000000000000",
        profile: "3g.40gb",
        device_index: 0,
        memory_total_bytes: 40e9,
      },
      {
        uuid: "MIG-00000001-0000-0000-0000-000000000001",
        profile: "2g.20gb",
        device_index: 1,
        memory_total_bytes: 20e9,
      },
      {
        uuid: "MIG-00000002-0000-0000-0000-000000000002",
        profile: "1g.10gb",
        device_index: 2,
        memory_total_bytes: 10e9,
      },
      {
        uuid: "MIG-00000003-0000-0000-0000-000000000003",
        profile: "1g.10gb",
        device_index: 3,
        memory_total_bytes: 10e9,
      },
    ]);
    for (const instance of gpu!.mig_instances) MigInstance.parse(instance);
  });

  test("H200 with MIG: compute-instance profiles 1c.3g.71gb and 2c.3g.71gb", () => {
    const [gpu] = parseListGpus(realFixture("h200-mig_list-gpus.txt"));
    assert.equal(gpu!.name, "NVIDIA H200");
    assert.deepEqual(
      gpu!.mig_instances.map((instance) => [instance.device_index, instance.profile, instance.memory_total_bytes]),
      [
        [0, "1c.3g.71gb", 71e9],
        [1, "2c.3g.71gb", 71e9],
        [2, "2g.35gb", 35e9],
        [3, "1g.18gb", 18e9],
        [4, "1g.18gb", 18e9],
      ],
    );
  });
});

describe("parseListGpus on hand-written listings", () => {
  test("several GPUs without MIG", () => {
    const gpus = parseListGpus(
      "GPU 0: NVIDIA GeForce RTX 3090 (UUID: GPU-aaaa)\nGPU 1: NVIDIA GeForce RTX 4090 (UUID: GPU-bbbb)\n\n",
    );
    assert.deepEqual(gpus, [
      { index: 0, name: "NVIDIA GeForce RTX 3090", uuid: "GPU-aaaa", mig_instances: [] },
      { index: 1, name: "NVIDIA GeForce RTX 4090", uuid: "GPU-bbbb", mig_instances: [] },
    ]);
  });

  test("MIG devices attach to the GPU line above them, including the old MIG-GPU-…/gi/ci UUIDs", () => {
    const gpus = parseListGpus(
      [
        "GPU 0: A100-SXM4-40GB (UUID: GPU-5c89852c)",
        "  MIG 3g.20gb Device 0: (UUID: MIG-GPU-5c89852c/1/0)",
        "GPU 1: A100-SXM4-40GB (UUID: GPU-6d90)",
        "  MIG 1g.5gb+me Device 0: (UUID: MIG-6d90-0000)",
      ].join("\r\n"),
    );
    assert.deepEqual(
      gpus.map((gpu) =>
        gpu.mig_instances.map((instance) => [instance.profile, instance.uuid, instance.memory_total_bytes]),
      ),
      [[["3g.20gb", "MIG-GPU-5c89852c/1/0", 20e9]], [["1g.5gb+me", "MIG-6d90-0000", 5e9]]],
    );
  });

  test("empty output lists no GPUs", () => assert.deepEqual(parseListGpus(""), []));

  test("any other line is rejected", () => {
    assert.throws(
      () => parseListGpus("No devices were found"),
      (error: unknown) => error instanceof NvidiaSmiParseError && error.line === 1,
    );
    assert.throws(() => parseListGpus("  MIG 1g.10gb Device 0: (UUID: MIG-x)"), /before any GPU/);
  });
});

describe("parseMigProfile", () => {
  test("splits compute slices, GPU slices, memory and attributes", () => {
    assert.deepEqual(parseMigProfile("3g.40gb"), {
      profile: "3g.40gb",
      compute_slices: null,
      gpu_slices: 3,
      memory_gb: 40,
      attributes: [],
    });
    assert.deepEqual(parseMigProfile("1c.3g.71gb"), {
      profile: "1c.3g.71gb",
      compute_slices: 1,
      gpu_slices: 3,
      memory_gb: 71,
      attributes: [],
    });
    assert.deepEqual(parseMigProfile("1g.10gb+me")?.attributes, ["me"]);
    assert.equal(parseMigProfile("4g")?.memory_gb, null);
  });

  test("is null for names that are not profiles; then memory is unknown", () => {
    assert.equal(parseMigProfile("GPU"), null);
    assert.equal(parseMigProfile("3g.40"), null);
    assert.equal(migProfileMemoryBytes("weird"), null);
    assert.equal(migProfileMemoryBytes("7g"), null);
  });
});
