import { once } from "node:events";
import type { ServerResponse } from "node:http";

/**
 * Writes server-sent events in the framing OpenAI's clients parse: each event is one
 * `data: <json>` line and a blank line; the stream ends with `data: [DONE]`. Writes wait
 * for the socket to drain, so a slow client slows the relay instead of filling memory.
 */
export class SseWriter {
  readonly #res: ServerResponse;
  #opened = false;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  /** Whether the status and headers went out (after that, errors can only be events). */
  get opened(): boolean {
    return this.#opened;
  }

  /** The client went away, or the stream was ended. */
  get closed(): boolean {
    return this.#res.destroyed || this.#res.writableEnded;
  }

  /** Sends status 200 and the event-stream headers, plus `headers`, at once. */
  open(headers: Record<string, string> = {}): void {
    if (this.#opened) return;
    this.#opened = true;
    const res = this.#res;
    res.statusCode = 200;
    res.setHeader("content-type", "text/event-stream; charset=utf-8");
    res.setHeader("cache-control", "no-cache, no-transform");
    res.setHeader("connection", "keep-alive");
    // nginx and similar proxies buffer responses unless told not to.
    res.setHeader("x-accel-buffering", "no");
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.socket?.setNoDelay(true);
    res.flushHeaders();
  }

  /** One `data:` event with `data` as JSON; with `event`, an `event:` line naming it first (the Responses API's framing). */
  send(data: unknown, event?: string): Promise<void> {
    return this.#write(`${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(data)}\n\n`);
  }

  /** `data: [DONE]`, then ends the response. */
  async done(): Promise<void> {
    await this.#write("data: [DONE]\n\n");
    this.end();
  }

  end(): void {
    if (!this.closed) this.#res.end();
  }

  async #write(text: string): Promise<void> {
    if (!this.#opened) this.open();
    if (this.closed) return;
    if (this.#res.write(text)) return;
    // Wait for the client to take the data, or to go away; then drop the other listener.
    const done = new AbortController();
    try {
      await Promise.race([
        once(this.#res, "drain", { signal: done.signal }),
        once(this.#res, "close", { signal: done.signal }),
      ]);
    } finally {
      done.abort();
    }
  }
}
