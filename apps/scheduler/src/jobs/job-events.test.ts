import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys } from "@corral/shared";
import { testRedis, uniquePrefix } from "../../../../test/support/redis.js";
import { JobEvents } from "./job-events.js";

/** Polls `read` every 10 ms until it gives something other than null (or fails after 5 s). */
async function until<T>(read: () => T | null, what: string): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = read();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("JobEvents: what a process knows of the jobs it created, against real Redis", () => {
  const channel = new RedisKeys(uniquePrefix("events")).jobEventsChannel;
  let publisher: Redis;
  let subscriber: Redis | null = null;
  let events: JobEvents;

  before(async () => {
    const url = (await testRedis()).url;
    publisher = new Redis(url);
    events = new JobEvents({
      createSubscriber: () => (subscriber = new Redis(url)),
      channel,
      logger: pino({ level: "silent" }),
    });
  });
  after(async () => {
    await events.close();
    publisher.disconnect();
  });

  /** Notes `id` as created here once the subscription is live (the first notes only start it). */
  const noteWhenLive = (id: string) =>
    until(() => {
      events.noteCreated(id, "t");
      return events.known(id, "t");
    }, `the subscription, noting ${id}`);

  test("a noted job is known not final until its final event comes, then final with the record", async () => {
    assert.deepEqual(await noteWhenLive("job_a"), { final: false });
    assert.equal(events.known("job_a", "other-tenant"), null, "another tenant's lookup learns nothing");
    await publisher.publish(channel, `job_a {"id":"job_a","status":"succeeded"}`);
    assert.deepEqual(
      await until(() => {
        const known = events.known("job_a", "t");
        return known?.final ? known : null;
      }, "the final event"),
      { final: true, record: '{"id":"job_a","status":"succeeded"}' },
    );
  });

  test("a job whose final event came before it was noted (it ran between the add and the submit's reply) is not known as not final", async () => {
    await noteWhenLive("job_marker");
    // The job was added, claimed, run and finished before the submit's code got back to
    // noting it: its final event is already here.
    await publisher.publish(channel, `job_early {"id":"job_early","status":"succeeded"}`);
    await publisher.publish(channel, "job_marker");
    await until(() => (events.known("job_marker", "t")?.final ? true : null), "the marker's event (after job_early's)");
    events.noteCreated("job_early", "t");
    // "not final" would make a waiter sleep through its whole wait: read the record instead.
    assert.equal(events.known("job_early", "t"), null);
  });

  test("after the subscriber connection drops, jobs noted before it are no longer known: their event may be lost", async () => {
    assert.deepEqual(await noteWhenLive("job_b"), { final: false });
    // The connection goes; the job's final event is published while it is down, and lost.
    const closed = new Promise((resolve) => subscriber!.once("close", resolve));
    subscriber!.stream.destroy();
    await closed;
    await publisher.publish(channel, "job_b");
    // Live again (ioredis reconnects and subscribes again): new jobs are known...
    assert.deepEqual(await noteWhenLive("job_c"), { final: false });
    // ...but job_b is not: "not final" would be wrong, so the caller must read the record.
    assert.equal(events.known("job_b", "t"), null);
  });
});
