import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { RedisKeys } from "../keys.js";
import {
  commandMethod,
  commandPipeline,
  defineCommands,
  loadCommands,
  luaScripts,
  queueCommand,
  runCommand,
  type CommandName,
  type LuaScript,
} from "./redis-commands.js";

const ALL: readonly CommandName[] = [
  "admitAndCreateJob",
  "admitBatch",
  "admitJobs",
  "closeBatch",
  "enterTenant",
  "holdFair",
  "leaveTenant",
  "parkJob",
  "pruneQueued",
  "recordLine",
  "recoverJobs",
  "releaseLease",
  "releaseFair",
  "releaseQueued",
  "renewLease",
  "saveIngestProgress",
  "settleFair",
  "sweepTenant",
  "syncLane",
  "transitionBatch",
  "transitionJob",
];

/** Commands whose first argument after the name is their only key. */
const ONE_KEY = new Set([
  "GET",
  "SET",
  "PEXPIRE",
  "HGET",
  "HSET",
  "HSETNX",
  "HINCRBY",
  "HINCRBYFLOAT",
  "HMGET",
  "HDEL",
  "HGETALL",
  "ZADD",
  "ZREM",
  "ZCARD",
  "ZCOUNT",
  "ZSCORE",
  "ZRANGE",
  "ZREMRANGEBYSCORE",
  "ZRANGEBYLEX",
  "LPOP",
  "LPUSH",
  "RPUSH",
  "LLEN",
  "LREM",
  "XADD",
  "SADD",
  "SREM",
  "SCARD",
]);
/** Commands whose every argument is a key. */
const ALL_KEYS = new Set(["DEL", "UNLINK", "EXISTS"]);
/** Commands that take no key (a pub/sub channel is not a key). */
const NO_KEY = new Set(["PUBLISH"]);

const KEY_REF = /^KEYS\[[^\]]+\]$/;

/** The header comment (`--[[ … ]]` at the top) and the code after it. */
function split(text: string): { header: string; body: string } {
  const match = /^--\[\[([\s\S]*?)\]\]\n([\s\S]*)$/.exec(text);
  assert.ok(match, "the script opens with a --[[ … ]] header");
  return { header: match[1]!, body: match[2]! };
}

/** The code without comments (the scripts put no `--` inside strings). */
const code = (body: string): string => body.replace(/--\[\[[\s\S]*?\]\]/g, "").replace(/--.*$/gm, "");

/** The arguments of each `redis.call(…)` / `redis.pcall(…)`, split at top-level commas. */
function redisCalls(source: string): string[][] {
  const calls: string[][] = [];
  const start = /redis\.p?call\s*\(/g;
  for (let match = start.exec(source); match; match = start.exec(source)) {
    const args: string[] = [];
    let depth = 0;
    let quote: string | null = null;
    let current = "";
    for (let i = match.index + match[0].length; i < source.length; i++) {
      const c = source[i]!;
      if (quote) {
        current += c;
        if (c === "\\") current += source[++i] ?? "";
        else if (c === quote) quote = null;
        continue;
      }
      if (c === '"' || c === "'") {
        quote = c;
        current += c;
      } else if (c === "(" || c === "{" || c === "[") {
        depth++;
        current += c;
      } else if ((c === ")" || c === "}" || c === "]") && depth > 0) {
        depth--;
        current += c;
      } else if (c === ")") {
        args.push(current.trim());
        break;
      } else if (c === "," && depth === 0) {
        args.push(current.trim());
        current = "";
      } else current += c;
    }
    calls.push(args);
  }
  return calls;
}

/** The key arguments of one call; throws on a command this check does not know. */
function keyArgs(script: LuaScript, args: readonly string[]): string[] {
  const name = /^["']([A-Za-z]+)["']$/.exec(args[0] ?? "")?.[1]?.toUpperCase();
  assert.ok(name, `${script.name}: the command name is a string literal (${args.join(", ")})`);
  if (NO_KEY.has(name)) return [];
  if (ALL_KEYS.has(name)) return args.slice(1);
  assert.ok(ONE_KEY.has(name), `${script.name}: ${name} is not known to this check; add it to the right list`);
  return args.slice(1, 2);
}

describe("the Lua scripts", () => {
  const scripts = luaScripts();

  test("there is one file per script, and each resolves its includes", () => {
    assert.deepEqual([...scripts.keys()].sort(), [...ALL].sort());
    for (const script of scripts.values()) {
      assert.doesNotMatch(script.lua, /@include/, `${script.name} has no unresolved include`);
      const defined = script.lua.match(/local function (\w+)/g) ?? [];
      assert.equal(new Set(defined).size, defined.length, `${script.name} defines each function once`);
    }
    assert.match(scripts.get("enterTenant")!.lua, /local function freePlaces/);
  });

  test("each header names the KEYS, ARGV and output, and each declared key is used", () => {
    for (const script of scripts.values()) {
      const { header, body } = split(readFileSync(script.path, "utf8"));
      assert.match(header, /Input:/, `${script.name} has an Input section`);
      assert.match(header, /Output:/, `${script.name} has an Output section`);
      assert.match(header, /ARGV\[/, `${script.name} names its ARGV`);
      const declared = [...header.matchAll(/^\s*KEYS\[(\d+)(\.\.n)?\]/gm)];
      const used = code(split(script.lua).body);
      if (script.numberOfKeys === null) {
        // Its keys are counted per call: KEYS[k..n] after any fixed ones, used by a computed index.
        const fixed = declared.filter((d) => d[2] === undefined).map((d) => Number(d[1]));
        const rest = declared.filter((d) => d[2] === "..n").map((d) => Number(d[1]));
        assert.deepEqual(rest, [fixed.length + 1], `${script.name} declares KEYS[${fixed.length + 1}..n] last`);
        assert.deepEqual(
          fixed,
          fixed.map((_, i) => i + 1),
        );
        for (const i of fixed) assert.ok(used.includes(`KEYS[${i}]`), `${script.name} uses KEYS[${i}]`);
        assert.match(used, /KEYS\[(?!\d+\])[^\]]+\]/, `${script.name} uses its counted keys`);
        continue;
      }
      assert.deepEqual(
        declared.map((d) => Number(d[1])),
        Array.from({ length: script.numberOfKeys }, (_, i) => i + 1),
        `${script.name} declares KEYS[1..${script.numberOfKeys}], as its file name says`,
      );
      for (let i = 1; i <= script.numberOfKeys; i++)
        assert.ok(used.includes(`KEYS[${i}]`), `${script.name} uses KEYS[${i}], which it declares`);
      for (const [, index] of used.matchAll(/KEYS\[([^\]]+)\]/g))
        assert.ok(Number(index) >= 1 && Number(index) <= script.numberOfKeys, `${script.name}: KEYS[${index}]`);
      assert.ok(body.trim().length > 0);
    }
  });

  test("no script builds a key name: every key argument of redis.call is a KEYS[...] reference", () => {
    for (const script of scripts.values()) {
      const source = code(script.lua);
      // Calls only through redis.call(…)/redis.pcall(…), never through an alias.
      assert.doesNotMatch(source, /redis\.p?call\s*[^\s(]/, `${script.name} calls redis only directly`);
      assert.doesNotMatch(source, /=\s*redis\s*$/m, `${script.name} does not alias redis`);
      const calls = redisCalls(source);
      assert.ok(calls.length > 0, `${script.name} calls redis`);
      for (const args of calls) {
        for (const key of keyArgs(script, args))
          assert.match(key, KEY_REF, `${script.name}: the key of ${args.join(", ")} is a KEYS[...] reference`);
      }
    }
  });

  test("the check itself catches a key built inside a script", () => {
    const fake: LuaScript = { name: "transitionJob", numberOfKeys: 1, lua: "", path: "" };
    const [call] = redisCalls(`redis.call("HINCRBY", ARGV[6] .. id .. ":counts", field, 1)`);
    assert.throws(() => assert.match(keyArgs(fake, call!)[0]!, KEY_REF));
    assert.throws(() => keyArgs(fake, redisCalls(`redis.call("MGET", KEYS[1], other)`)[0]!), /not known/);
    assert.deepEqual(
      redisCalls(`redis.call("GET", KEYS[1]) redis.call('SET', KEYS[2], cjson.encode({a = 1}), "EX", 5)`),
      [
        [`"GET"`, "KEYS[1]"],
        [`'SET'`, "KEYS[2]", "cjson.encode({a = 1})", `"EX"`, "5"],
      ],
    );
  });
});

describe("the Lua scripts on real Redis", () => {
  let url: string;
  let redis: Redis;
  const prefix = uniquePrefix("commands");
  const keys = new RedisKeys(prefix);

  before(async () => {
    url = (await testRedis()).url;
    redis = new Redis(url);
  });
  after(async () => {
    await cleanupPrefix(url, prefix);
    redis.disconnect();
  });

  test("every script loads (SCRIPT LOAD), under the SHA ioredis calls it by", async () => {
    const shas = await loadCommands(redis);
    assert.deepEqual([...shas.keys()].sort(), [...ALL].sort());
    for (const [name, sha] of shas)
      assert.equal(sha, createHash("sha1").update(luaScripts().get(name)!.lua).digest("hex"), name);
    assert.deepEqual(
      await redis.script("EXISTS", ...shas.values()),
      [...shas.values()].map(() => 1),
    );
  });

  test("scripts are defined once per connection and run by name, alone or in a pipeline", async () => {
    defineCommands(redis);
    const method = (redis as unknown as Record<string, unknown>)[commandMethod("closeBatch")];
    defineCommands(redis);
    assert.equal((redis as unknown as Record<string, unknown>)[commandMethod("closeBatch")], method);
    await redis.hset(keys.batchCounts("b1"), "open", 1);
    assert.equal(await runCommand(redis, "closeBatch", [keys.batchCounts("b1")], ["cancelled"]), 1);
    assert.equal(await runCommand(redis, "closeBatch", [keys.batchCounts("b1")], ["completed"]), 0);
    const pipeline = commandPipeline(redis);
    // One whose caller passes the number of keys (admitBatch.lua: no members to check here).
    queueCommand(pipeline, "admitBatch", [keys.tenantActiveBatches("t1")], ["5", "b9"]);
    queueCommand(pipeline, "closeBatch", [keys.batchCounts("b1")], ["cancelled"]);
    assert.deepEqual(await pipeline.exec(), [
      [null, 1],
      [null, 1],
    ]);
    assert.deepEqual(await redis.smembers(keys.tenantActiveBatches("t1")), ["b9"]);
    assert.throws(() => runCommand(redis, "closeBatch", [], ["x"]), /takes 1 keys/);
  });
});
