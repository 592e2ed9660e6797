#!/usr/bin/env node
// A STAND-IN FOR nvidia-smi, FOR TESTS ONLY. It is not NVIDIA's tool and talks to no GPU.
//
// Its output is real captured nvidia-smi output, edited: the H100 row of
// ../../../shared/fixtures/nvidia-smi/h100-80gb-hbm3_query-gpu-all-fields_idle.csv for
// --query-gpu, the layout of h100-mig_list-gpus.txt for -L, and the header, GPU block and
// process box of h100-mig_default-table_load.txt for plain `nvidia-smi`. Each spec GPU
// gets the real row with its index, uuid, name, memory (and whatever else the spec sets)
// substituted. Set CORRAL_NVIDIA_SMI_FIXTURES to read the fixtures from elsewhere.
//
// Spec: JSON file named by CORRAL_FAKE_NVIDIA_SMI_SPEC (no spec: one idle H100, verbatim).
//   {
//     "gpus": [{
//       "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-…",          // default: real name, masked uuid
//       "memory_total_mib": 8192, "memory_used_mib": 0,           // default: the real row's values
//       "memory_reserved_mib": 0,                                  // default 0 when memory is set
//       "memory_free_mib": 8192,                                   // default total − reserved − used
//       "utilization_pct": 0, "temperature_c": 41, "power_w": 69.85,
//       "mig": ["3g.40gb", "1c.3g.71gb"],                          // MIG devices: turns MIG mode on
//       "fields": { "clocks.sm": "1980 MHz" }                      // raw overrides, applied last
//     }],
//     "driver_version": "590.48.01",                               // default: the real one
//     "cuda_version": "12.4",                                      // default "12.4"; null drops the line's value
//     "fail": "exit" | "garbage" | "hang",                         // misbehave, on every command…
//     "fail_on": ["query", "list", "table", "topo"],               // …or only on these
//     "topo": "synthetic-4gpu-pcie_topo-matrix.txt",               // `topo -m`: this file (a path, or a name in
//                                                                  // test/fixtures/nvidia-smi); default: PHB between all
//     "xml": "dual-rtx-a5000_query-xml.xml"                        // take the GPUs (name, uuid, bus id, memory)
//                                                                  // from this real `-q -x` capture (in the fixtures dir);
//                                                                  // "gpus"[i], when given, overrides GPU i's fields
//                                                                  // (e.g. memory_used_mib: 0, memory_free_mib: … for idle)
//   }
// Answers: --query-gpu=<fields> --format=csv[,noheader][,nounits] (also `--query-gpu <fields>`),
// -i/--id=<indices>, -L/--list-gpus, `topo -m`, and no arguments (the default table). Anything else is
// rejected the way nvidia-smi rejects it.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const fixturesDir = process.env.CORRAL_NVIDIA_SMI_FIXTURES || resolve(here, "../../../shared/fixtures/nvidia-smi");
const fixture = (name) => readFileSync(resolve(fixturesDir, name), "utf8");

/** The GPUs of a real `nvidia-smi -q -x` capture, as spec GPUs (name, uuid, memory in MiB). */
function gpusFromXml(name) {
  const xml = fixture(name);
  const mib = (block, tag) => Number(new RegExp(`<${tag}>(\\d+) MiB</${tag}>`).exec(block)[1]);
  return [...xml.matchAll(/<gpu id="([^"]+)">([\s\S]*?)<\/gpu>/g)].map(([, busId, body]) => {
    const memory = /<fb_memory_usage>([\s\S]*?)<\/fb_memory_usage>/.exec(body)[1];
    return {
      name: /<product_name>([^<]*)<\/product_name>/.exec(body)[1],
      uuid: /<uuid>([^<]*)<\/uuid>/.exec(body)[1],
      memory_total_mib: mib(memory, "total"),
      memory_reserved_mib: mib(memory, "reserved"),
      memory_used_mib: mib(memory, "used"),
      memory_free_mib: mib(memory, "free"),
      fields: { "pci.bus_id": busId },
    };
  });
}

function loadSpec() {
  const path = process.env.CORRAL_FAKE_NVIDIA_SMI_SPEC;
  if (!path) return { gpus: [{}] };
  const spec = JSON.parse(readFileSync(path, "utf8"));
  if (spec.xml) {
    const overrides = Array.isArray(spec.gpus) ? spec.gpus : [];
    return { ...spec, gpus: gpusFromXml(spec.xml).map((gpu, i) => ({ ...gpu, ...overrides[i] })) };
  }
  return { ...spec, gpus: Array.isArray(spec.gpus) ? spec.gpus : [] };
}

function topology(spec) {
  if (spec.topo) {
    const path = resolve(here, "../fixtures/nvidia-smi", spec.topo);
    process.stdout.write(readFileSync(path, "utf8"));
    return;
  }
  const n = spec.gpus.length;
  const names = spec.gpus.map((_, i) => `GPU${i}`);
  const lines = [`\t${names.join("\t")}\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID`];
  for (let i = 0; i < n; i++) {
    const cells = names.map((_, j) => (i === j ? " X " : "PHB"));
    lines.push(`GPU${i}\t${cells.join("\t")}\t0-15\t0\t\tN/A`);
  }
  lines.push(
    "",
    "Legend:",
    "",
    "  X    = Self",
    "  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)",
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

function fail(spec, command) {
  if (!spec.fail) return;
  if (Array.isArray(spec.fail_on) && !spec.fail_on.includes(command)) return;
  if (spec.fail === "exit") {
    // What nvidia-smi prints (on stdout) when the driver is not loaded, and its exit status.
    process.stdout.write(
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. " +
        "Make sure that the latest NVIDIA driver is installed and running.\n\n",
    );
    process.exit(9);
  }
  if (spec.fail === "garbage") {
    process.stdout.write("\u0000\u0001 segfault?? <<<not nvidia-smi output>>>\n%%%% 12 ; ; ;\n");
    process.exit(0);
  }
  if (spec.fail === "hang") {
    setInterval(() => {}, 1 << 30);
    return "hang";
  }
  throw new Error(`fake nvidia-smi: unknown fail mode ${JSON.stringify(spec.fail)}`);
}

const hex = (n, width) => n.toString(16).toUpperCase().padStart(width, "0");
const maskedUuid = (i) => `GPU-${hex(i, 8).toLowerCase()}-0000-0000-0000-${hex(i, 12).toLowerCase()}`;
const maskedMigUuid = (gpu, dev) =>
  `MIG-${hex(gpu * 16 + dev, 8).toLowerCase()}-0000-0000-0000-${hex(gpu * 16 + dev, 12).toLowerCase()}`;

// ---------- the real H100 row ----------
const csvText = fixture("h100-80gb-hbm3_query-gpu-all-fields_idle.csv").replace(/\r?\n$/, "");
const [headerLine, rowLine] = csvText.split(/\r?\n/);
const realColumns = headerLine.split(",").map((cell, i) => {
  const match = /^\s*(.*?)\s*(?:\[([^\]]*)\])?\s*$/.exec(cell);
  return { name: match[1], unit: match[2] ?? null, value: rowLine.split(",")[i].trim() };
});
const realByName = new Map(realColumns.map((column) => [column.name, column]));
const ALIASES = { gpu_name: "name", gpu_uuid: "uuid", gpu_serial: "serial", gpu_bus_id: "pci.bus_id" };
const real = (name) => realByName.get(name).value;
const realMib = (name) => Number(real(name).replace(/\s*MiB$/, ""));

/** The spec GPU's memory in MiB, derived like the driver reports it. */
function memoryOf(gpu) {
  const setsMemory = gpu.memory_total_mib !== undefined || gpu.memory_used_mib !== undefined;
  const total = gpu.memory_total_mib ?? realMib("memory.total");
  const used = gpu.memory_used_mib ?? (setsMemory ? 0 : realMib("memory.used"));
  const reserved = gpu.memory_reserved_mib ?? (setsMemory ? 0 : realMib("memory.reserved"));
  const free = gpu.memory_free_mib ?? (setsMemory ? Math.max(0, total - reserved - used) : realMib("memory.free"));
  return { total, used, reserved, free };
}

/** The real row's values with this GPU's substituted, keyed by canonical field name. */
function valuesFor(spec, gpu, i) {
  const values = new Map(realColumns.map((column) => [column.name, column.value]));
  const memory = memoryOf(gpu);
  const mig = Array.isArray(gpu.mig) && gpu.mig.length > 0;
  values.set("index", String(i));
  values.set("count", String(spec.gpus.length));
  values.set("uuid", gpu.uuid ?? (i === 0 ? real("uuid") : maskedUuid(i)));
  if (gpu.name !== undefined) values.set("name", gpu.name);
  if (i > 0) {
    values.set("pci.bus_id", `00000000:00:${hex(9 + i, 2)}.0`);
    values.set("pci.device", `0x${hex(9 + i, 2)}`);
    values.set("minor_number", String(i));
  }
  values.set("memory.total", `${memory.total} MiB`);
  values.set("memory.used", `${memory.used} MiB`);
  values.set("memory.reserved", `${memory.reserved} MiB`);
  values.set("memory.free", `${memory.free} MiB`);
  if (spec.driver_version) values.set("driver_version", spec.driver_version);
  if (gpu.utilization_pct !== undefined) values.set("utilization.gpu", `${gpu.utilization_pct} %`);
  if (gpu.temperature_c !== undefined) values.set("temperature.gpu", String(gpu.temperature_c));
  if (gpu.power_w !== undefined) {
    for (const field of ["power.draw", "power.draw.average", "power.draw.instant"]) {
      values.set(field, `${Number(gpu.power_w).toFixed(2)} W`);
    }
  }
  if (mig) {
    values.set("mig.mode.current", "Enabled");
    values.set("mig.mode.pending", "Enabled");
    values.set("utilization.gpu", "[N/A]"); // as on the real MIG-enabled H100
  }
  for (const [field, raw] of Object.entries(gpu.fields ?? {})) values.set(ALIASES[field] ?? field, String(raw));
  return values;
}

function selectedGpus(spec, ids) {
  const all = spec.gpus.map((gpu, i) => ({ gpu, i }));
  if (ids === null) return all;
  const wanted = ids.split(",").map((id) => id.trim());
  const picked = all.filter(({ gpu, i }) => wanted.includes(String(i)) || wanted.includes(gpu.uuid ?? maskedUuid(i)));
  if (picked.length === 0) {
    process.stdout.write(`No devices were found\n`);
    process.exit(6);
  }
  return picked;
}

// ---------- commands ----------
function queryGpu(spec, fieldList, format, ids) {
  const options = new Set(format.split(",").map((option) => option.trim()));
  if (!options.has("csv")) {
    process.stdout.write(`"${format}" is not a valid format.\n`);
    process.exit(2);
  }
  const fields = fieldList.split(",").map((field) => field.trim());
  for (const field of fields) {
    if (!realByName.has(ALIASES[field] ?? field)) {
      process.stdout.write(`Field "${field}" is not a valid field to query.\n\n`);
      process.exit(2);
    }
  }
  const units = !options.has("nounits");
  const lines = [];
  if (!options.has("noheader")) {
    lines.push(
      fields
        .map((field) => {
          const unit = realByName.get(ALIASES[field] ?? field).unit;
          return unit && units ? `${field} [${unit}]` : field;
        })
        .join(", "),
    );
  }
  for (const { gpu, i } of selectedGpus(spec, ids)) {
    const values = valuesFor(spec, gpu, i);
    lines.push(
      fields
        .map((field) => {
          const name = ALIASES[field] ?? field;
          const value = values.get(name);
          const unit = realByName.get(name).unit;
          // nounits strips "81559 MiB" to "81559" but keeps placeholders such as "[N/A]".
          return !units && unit && value.endsWith(` ${unit}`) ? value.slice(0, -unit.length - 1) : value;
        })
        .join(", "),
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

function listGpus(spec, ids) {
  const real = fixture("h100-mig_list-gpus.txt").split(/\r?\n/);
  const gpuTemplate = real[0]; // GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-…)
  const migTemplate = real[1]; //   MIG 3g.40gb     Device  0: (UUID: MIG-…)
  const migMatch = /^(\s*MIG )(\S+\s+)(Device\s+)(\d+)(: \(UUID: )([^)]+)(\).*)$/.exec(migTemplate);
  const profileWidth = migMatch[2].length;
  const deviceWidth = migMatch[4].length + migMatch[3].length - "Device ".length;
  const lines = [];
  for (const { gpu, i } of selectedGpus(spec, ids)) {
    const values = valuesFor(spec, gpu, i);
    lines.push(
      gpuTemplate.replace(
        /^GPU \d+: (.*) \(UUID: ([^)]+)\)/,
        () => `GPU ${i}: ${values.get("name")} (UUID: ${values.get("uuid")})`,
      ),
    );
    (gpu.mig ?? []).forEach((profile, dev) => {
      lines.push(
        `${migMatch[1]}${profile.padEnd(profileWidth)}Device ${String(dev).padStart(deviceWidth)}${migMatch[5]}` +
          `${maskedMigUuid(i, dev)}${migMatch[7]}`,
      );
    });
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** Writes `content` into a table cell of the real width, left- or right-aligned. */
const fit = (content, width, align = "left") =>
  (align === "left" ? content.padEnd(width) : content.padStart(width)).slice(0, width);

function defaultTable(spec) {
  const real = fixture("h100-mig_default-table_load.txt").split(/\r?\n/);
  const headerEnd = real.findIndex((line) => line.startsWith("|====="));
  const header = real.slice(0, headerEnd + 1);
  const cuda = spec.cuda_version === undefined ? "12.4" : spec.cuda_version;
  header[2] = header[2].replace(/CUDA Version: \S+\s*/, (whole) =>
    cuda === null ? " ".repeat(whole.length) : `CUDA Version: ${cuda}`.padEnd(whole.length),
  );
  if (spec.driver_version) {
    header[2] = header[2].replace(/(NVIDIA-SMI |Driver Version: )\S+\s*/g, (whole, label) =>
      `${label}${spec.driver_version}`.padEnd(whole.length),
    );
  }
  const row1 = real[headerEnd + 1];
  const rule = real[headerEnd + 4];
  const widths = row1
    .split("|")
    .slice(1, -1)
    .map((cell) => cell.length); // [41, 24, 22]
  const lines = [...header];
  spec.gpus.forEach((gpu, i) => {
    const values = valuesFor(spec, gpu, i);
    const memory = memoryOf(gpu);
    const util = values
      .get("utilization.gpu")
      .replace(/^\[N\/A\]$/, "N/A")
      .replace(" %", "%");
    const migMode = (values.get("mig.mode.current") || "N/A").replace(/^\[N\/A\]$/, "N/A");
    const watts = Math.round(Number(values.get("power.draw").replace(" W", "")) || 0);
    const cap = Math.round(Number(values.get("power.limit")?.replace(" W", "")) || 700);
    const cells1 = [
      `${String(i).padStart(4)}  ${fit(values.get("name"), widths[0] - 10)}On  `,
      `   ${values.get("pci.bus_id")} Off `,
      fit(migMode === "Enabled" ? "On " : "0 ", widths[2], "right"),
    ];
    const cells2 = [
      fit(` N/A   ${values.get("temperature.gpu").padStart(2)}C    P0`, 16) +
        fit(`${watts}W / ${String(cap).padStart(4)}W `, widths[0] - 16, "right"),
      fit(`${memory.used}MiB / ${String(memory.total).padStart(6)}MiB `, widths[1], "right"),
      fit(`${fit(util, 8, "right")}      Default `, widths[2], "right"),
    ];
    const cells3 = [" ".repeat(widths[0]), " ".repeat(widths[1]), fit(`${migMode} `, widths[2], "right")];
    lines.push(
      `|${cells1.map((cell, c) => fit(cell, widths[c])).join("|")}|`,
      `|${cells2.map((cell, c) => fit(cell, widths[c])).join("|")}|`,
      `|${cells3.map((cell, c) => fit(cell, widths[c])).join("|")}|`,
      rule,
    );
  });
  // The real process box, with its rows replaced by the line nvidia-smi prints when it is empty.
  const processes = real.findIndex((line) => line.startsWith("| Processes:"));
  const processHeader = real.slice(processes - 1, processes + 4);
  const inner = processHeader[0].length - 2;
  lines.push(
    "",
    ...processHeader,
    `|${fit("  No running processes found", inner)}|`,
    real.filter((line) => line.startsWith("+")).at(-1),
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

// ---------- argument handling ----------
const spec = loadSpec();
const args = process.argv.slice(2);
let query = null;
let format = null;
let ids = null;
let list = false;
const topo = args.length === 2 && args[0] === "topo" && args[1] === "-m";
for (let a = 0; a < args.length && !topo; a++) {
  const arg = args[a];
  if (arg.startsWith("--query-gpu=")) query = arg.slice("--query-gpu=".length);
  else if (arg === "--query-gpu") query = args[++a] ?? "";
  else if (arg.startsWith("--format=")) format = arg.slice("--format=".length);
  else if (arg === "--format") format = args[++a] ?? "";
  else if (arg.startsWith("--id=")) ids = arg.slice("--id=".length);
  else if (arg === "-i" || arg === "--id") ids = args[++a] ?? "";
  else if (arg === "-L" || arg === "--list-gpus") list = true;
  else {
    process.stdout.write(`Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n\n`);
    process.exit(2);
  }
}

if (topo) {
  if (fail(spec, "topo") !== "hang") topology(spec);
} else if (query !== null) {
  if (fail(spec, "query") !== "hang") {
    if (format === null) {
      process.stdout.write(`Option "--format" is required when using "--query-gpu".\n\n`);
      process.exit(2);
    }
    queryGpu(spec, query, format, ids);
  }
} else if (list) {
  if (fail(spec, "list") !== "hang") listGpus(spec, ids);
} else if (args.length === 0) {
  if (fail(spec, "table") !== "hang") defaultTable(spec);
} else {
  process.stdout.write(`Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n\n`);
  process.exit(2);
}
