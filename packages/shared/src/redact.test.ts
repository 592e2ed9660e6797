import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { redactUrl, redactVariable } from "./redact.js";

describe("redaction", () => {
  test("redactUrl hides the password of a URL and keeps the rest", () => {
    assert.equal(redactUrl("redis://:secret@redis:6379/0"), "redis://:***@redis:6379/0");
    assert.equal(redactUrl("rediss://user:p%40ss@host:6380"), "rediss://user:***@host:6380");
    assert.equal(redactUrl("redis://secretonly@host"), "redis://***@host");
    assert.equal(redactUrl("redis://user:pa@ss@host:1"), "redis://user:***@host:1");
    assert.equal(redactUrl("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    assert.equal(redactUrl("not a url"), "not a url");
  });

  test("redactUrl hides the passwords of Sentinel and Cluster URLs, the sentinels' own included", () => {
    assert.equal(
      redactUrl("redis+sentinel://:pw@h1:26379,h2:26379/mymaster?sentinelPassword=spw&db=2"),
      "redis+sentinel://:***@h1:26379,h2:26379/mymaster?sentinelPassword=***&db=2",
    );
    assert.equal(
      redactUrl("rediss+sentinel://h1:26379/m?db=1&sentinelPassword=spw"),
      "rediss+sentinel://h1:26379/m?db=1&sentinelPassword=***",
    );
    assert.equal(redactUrl("redis+cluster://u:pw@h1:7000,h2:7001"), "redis+cluster://u:***@h1:7000,h2:7001");
  });

  test("redactVariable hides key values, keeps tenant names and URL hosts", () => {
    assert.equal(redactVariable("CORRAL_API_KEYS", "lab-a:sk-0123456789,lab-b:x"), "lab-a:***,lab-b:***");
    assert.equal(redactVariable("CORRAL_ADMIN_KEY", "sk-admin"), "***");
    assert.equal(redactVariable("CORRAL_METRICS_TOKEN", "tok"), "***");
    assert.equal(redactVariable("CORRAL_REDIS_URL", "redis://:pw@h:1"), "redis://:***@h:1");
    assert.equal(redactVariable("CORRAL_PORT", "abc"), "abc");
  });
});
