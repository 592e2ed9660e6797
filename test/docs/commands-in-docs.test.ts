import { readFileSync } from "node:fs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { SCHEDULER_ENV } from "@corral/scheduler";
import { WORKER_ENV } from "@corral/worker";
import { buildProgram, type EnvVariableSpec } from "@corral/cli";

const DOCS = ["README.md", "README.vi.md", "docs/gpu-setup.md", "docs/operations.md", "docs/how-inference-works.md"];

/** Every `corral …` invocation in a doc: in code blocks and inline code, up to a comment or the end of the span. */
function invocations(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:^|[\s`(])corral((?: +[^\s`#|]+)+)/gm)) found.push(match[1]!.trim());
  return found;
}

/** The CLI's own commander (apps/cli has its own copy of the package). */
type Command = ReturnType<typeof buildProgram>;

const program = buildProgram({
  env: {},
  io: { out: () => undefined, err: () => undefined, isTty: false },
  schedulerEnv: SCHEDULER_ENV as readonly EnvVariableSpec[],
  workerEnv: WORKER_ENV as readonly EnvVariableSpec[],
});

/** The options a command accepts: its own and its parents' (commander's own -h/--help and -V/--version too). */
function optionsOf(command: Command): Set<string> {
  const names = new Set(["--help", "-h"]);
  for (let c: Command | null = command; c; c = c.parent) {
    for (const option of c.options) {
      if (option.long) names.add(option.long);
      if (option.short) names.add(option.short);
    }
  }
  return names;
}

test("every corral command and flag the docs show exists in the CLI", () => {
  let checked = 0;
  for (const doc of DOCS) {
    const text = readFileSync(new URL(`../../${doc}`, import.meta.url), "utf8");
    for (const line of invocations(text)) {
      const words = line.split(/\s+/);
      let command: Command = program;
      let i = 0;
      for (; i < words.length; i++) {
        const sub = command.commands.find((c) => c.name() === words[i]);
        if (!sub) break;
        command = sub;
      }
      if (command === program) continue; // prose such as "corral is …", not an invocation
      const known = optionsOf(command);
      for (const word of words.slice(i)) {
        if (!word.startsWith("-") || word === "-" || /^-\d/.test(word)) continue;
        const flag = word.replace(/[=,.;:)\]]+.*$/, "").replace(/^--no-/, "--");
        assert.ok(known.has(flag), `${doc}: \`corral ${line}\`: ${command.name()} has no ${flag}`);
      }
      checked++;
    }
  }
  assert.ok(checked >= 30, `only ${checked} invocations found`);
});

test("the models subcommands the docs describe exist, with --json where the docs say", () => {
  const models = program.commands.find((c) => c.name() === "models")!;
  assert.deepEqual(
    models.commands.map((c) => c.name()),
    ["pull", "list", "rm", "inspect"],
  );
  for (const name of ["pull", "list", "inspect"]) {
    assert.ok(optionsOf(models.commands.find((c) => c.name() === name)!).has("--json"), `${name} --json`);
  }
  const doctor = program.commands.find((c) => c.name() === "doctor")!;
  assert.ok(optionsOf(doctor).has("--json"));
});
