import type { TokenLogprob } from "@corral/shared";
import {
  functionCallItem,
  messageItem,
  outputText,
  responsesId,
  type FunctionCallItem,
  type MessageItem,
  type OutputItem,
  type ResponseObject,
} from "../../openai-format/responses-object.js";
import { chatLogprobs } from "../../openai-format/responses.js";
import { ToolCallStreamParser } from "../../openai-format/tool-call-stream.js";
import { toolCallId } from "../../openai-format/tools.js";
import type { SseWriter } from "./sse-writer.js";

/**
 * The Responses API's server-sent events: each is `event: <type>` and `data: {type,
 * sequence_number, …}`, numbered from 0; the stream ends after `response.completed`
 * (or `response.incomplete`, or `response.failed`) with no `[DONE]`.
 */
export class ResponseEvents {
  readonly #sse: SseWriter;
  #sequence = 0;

  constructor(sse: SseWriter) {
    this.#sse = sse;
  }

  send(type: string, fields: Record<string, unknown>): Promise<void> {
    return this.#sse.send({ type, sequence_number: this.#sequence++, ...fields }, type);
  }

  /** `response.created` and `response.in_progress`, with the response as it starts. */
  async start(response: ResponseObject): Promise<void> {
    await this.send("response.created", { response });
    await this.send("response.in_progress", { response });
  }

  /** A message item is added (in progress, its text part empty). */
  async openMessage(index: number, id: string): Promise<void> {
    await this.send("response.output_item.added", { output_index: index, item: messageItem(id, "in_progress", []) });
    await this.send("response.content_part.added", {
      item_id: id,
      output_index: index,
      content_index: 0,
      part: outputText("", null),
    });
  }

  textDelta(index: number, id: string, delta: string, logprobs: readonly TokenLogprob[] | null): Promise<void> {
    return this.send("response.output_text.delta", {
      item_id: id,
      output_index: index,
      content_index: 0,
      delta,
      logprobs: logprobs ? chatLogprobs(logprobs).content : [],
    });
  }

  /** The message's text is done: `output_text.done`, `content_part.done` and `output_item.done`. */
  async closeMessage(index: number, item: MessageItem): Promise<void> {
    const part = item.content[0]!;
    const at = { item_id: item.id, output_index: index, content_index: 0 };
    await this.send("response.output_text.done", { ...at, text: part.text, logprobs: part.logprobs });
    await this.send("response.content_part.done", { ...at, part });
    await this.send("response.output_item.done", { output_index: index, item });
  }

  /** A function call item is added (in progress, its arguments empty). */
  addCall(index: number, item: FunctionCallItem): Promise<void> {
    return this.send("response.output_item.added", {
      output_index: index,
      item: { ...item, status: "in_progress", arguments: "" },
    });
  }

  argumentsDelta(index: number, id: string, delta: string): Promise<void> {
    return this.send("response.function_call_arguments.delta", { item_id: id, output_index: index, delta });
  }

  /** The call's arguments are done: `function_call_arguments.done` and `output_item.done`. */
  async closeCall(index: number, item: FunctionCallItem): Promise<void> {
    await this.send("response.function_call_arguments.done", {
      item_id: item.id,
      output_index: index,
      name: item.name,
      arguments: item.arguments,
    });
    await this.send("response.output_item.done", { output_index: index, item: { ...item } });
  }

  /** A whole function call: added with empty arguments, its arguments in one delta, then done. */
  async functionCall(index: number, item: FunctionCallItem): Promise<void> {
    await this.addCall(index, item);
    await this.argumentsDelta(index, item.id, item.arguments);
    await this.closeCall(index, item);
  }

  /** A finished item, message or call, all of its events at once. */
  async item(index: number, item: OutputItem): Promise<void> {
    if (item.type === "function_call") return this.functionCall(index, item);
    await this.openMessage(index, item.id);
    const part = item.content[0]!;
    if (part.text !== "")
      await this.send("response.output_text.delta", {
        item_id: item.id,
        output_index: index,
        content_index: 0,
        delta: part.text,
        logprobs: part.logprobs,
      });
    await this.closeMessage(index, item);
  }

  /** `response.completed` or `response.incomplete`, by the response's status. */
  finish(response: ResponseObject): Promise<void> {
    const type = response.status === "incomplete" ? "response.incomplete" : "response.completed";
    return this.send(type, { response });
  }

  /** An `error` event, then `response.failed` carrying the same error. */
  async fail(response: ResponseObject, error: { code: string; message: string; param: string | null }): Promise<void> {
    await this.send("error", { code: error.code, message: error.message, param: error.param });
    await this.send("response.failed", { response });
  }
}

/** How a streamed job's text becomes output items, event by event. */
export interface OutputStream {
  /** More of the job's text, with its tokens' logprobs when asked for. */
  text(delta: string, logprobs: readonly TokenLogprob[] | null): Promise<void>;
  /** The job ended: closes what is open and returns the output items. */
  finish(status: "completed" | "incomplete"): Promise<OutputItem[]>;
  /** The output so far (for `response.failed`). */
  partial(): OutputItem[];
}

/** The text as one message, its `output_text` deltas relayed as they come. */
export class MessageStream implements OutputStream {
  readonly #events: ResponseEvents;
  readonly #id = responsesId("msg");
  readonly #withLogprobs: boolean;
  #opened = false;
  #text = "";
  readonly #tokens: TokenLogprob[] = [];

  constructor(events: ResponseEvents, withLogprobs: boolean) {
    this.#events = events;
    this.#withLogprobs = withLogprobs;
  }

  async text(delta: string, logprobs: readonly TokenLogprob[] | null): Promise<void> {
    await this.#open();
    this.#text += delta;
    if (logprobs) this.#tokens.push(...logprobs);
    await this.#events.textDelta(0, this.#id, delta, this.#withLogprobs ? (logprobs ?? []) : null);
  }

  async finish(status: "completed" | "incomplete"): Promise<OutputItem[]> {
    await this.#open();
    const item = this.#item(status);
    await this.#events.closeMessage(0, item);
    return [item];
  }

  partial(): OutputItem[] {
    return this.#opened ? [this.#item("incomplete")] : [];
  }

  #item(status: MessageItem["status"]): MessageItem {
    return messageItem(this.#id, status, [outputText(this.#text, this.#withLogprobs ? this.#tokens : null)]);
  }

  async #open(): Promise<void> {
    if (this.#opened) return;
    this.#opened = true;
    await this.#events.openMessage(0, this.#id);
  }
}

/**
 * A forced call's text (see tool-call-stream.ts) as `function_call` items: each added when
 * its name is written, its arguments relayed as `function_call_arguments.delta` events as
 * they are generated, and done when the next call starts or the job ends.
 */
export class FunctionCallStream implements OutputStream {
  readonly #events: ResponseEvents;
  readonly #parser = new ToolCallStreamParser();
  readonly #items: FunctionCallItem[] = [];
  #text = "";

  constructor(events: ResponseEvents) {
    this.#events = events;
  }

  async text(delta: string): Promise<void> {
    this.#text += delta;
    for (const event of this.#parser.push(delta)) {
      if (event.type === "call") {
        await this.#close("completed");
        const item = functionCallItem(responsesId("fc"), "in_progress", toolCallId(), event.name, "");
        this.#items.push(item);
        await this.#events.addCall(event.index, item);
      } else {
        const item = this.#items[event.index]!;
        item.arguments += event.text;
        await this.#events.argumentsDelta(event.index, item.id, event.text);
      }
    }
  }

  async finish(status: "completed" | "incomplete"): Promise<OutputItem[]> {
    await this.#close(status);
    if (this.#items.length > 0) return this.#items;
    // No call was written (the output was cut before its first name): the text, as a message.
    const item = messageItem(responsesId("msg"), status, [outputText(this.#text, null)]);
    await this.#events.item(0, item);
    return [item];
  }

  partial(): OutputItem[] {
    return this.#items;
  }

  /** Ends the open call (the last), if any. */
  async #close(status: "completed" | "incomplete"): Promise<void> {
    const index = this.#items.length - 1;
    const item = this.#items[index];
    if (!item || item.status !== "in_progress") return;
    item.status = status;
    await this.#events.closeCall(index, item);
  }
}
