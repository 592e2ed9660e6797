import type { TokenLogprob } from "@corral/shared";
import { newToolCallId } from "@corral/llama";
import {
  functionCallItem,
  messageItem,
  outputText,
  reasoningItem,
  responsesId,
  type FunctionCallItem,
  type MessageItem,
  type OutputItem,
  type ReasoningItem,
  type ResponseObject,
} from "../../openai-format/responses-object.js";
import { chatLogprobs } from "../../openai-format/responses.js";
import { ToolCallStreamParser } from "../../openai-format/tool-call-stream.js";
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

  /** A reasoning item is added (in progress, its `reasoning_text` part empty). */
  async openReasoning(index: number, id: string): Promise<void> {
    // Its part is added next (as a message's is): the item starts with none.
    const item = { ...reasoningItem(id, "in_progress", ""), content: [] };
    await this.send("response.output_item.added", { output_index: index, item });
    await this.send("response.content_part.added", {
      item_id: id,
      output_index: index,
      content_index: 0,
      part: { type: "reasoning_text", text: "" },
    });
  }

  reasoningDelta(index: number, id: string, delta: string): Promise<void> {
    return this.send("response.reasoning_text.delta", { item_id: id, output_index: index, content_index: 0, delta });
  }

  /** The thoughts are done: `reasoning_text.done`, `content_part.done` and `output_item.done`. */
  async closeReasoning(index: number, item: ReasoningItem): Promise<void> {
    const part = item.content[0]!;
    const at = { item_id: item.id, output_index: index, content_index: 0 };
    await this.send("response.reasoning_text.done", { ...at, text: part.text });
    await this.send("response.content_part.done", { ...at, part: { ...part } });
    await this.send("response.output_item.done", {
      output_index: index,
      item: reasoningItem(item.id, item.status, part.text),
    });
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

  /** A finished item, reasoning, message or call, all of its events at once. */
  async item(index: number, item: OutputItem): Promise<void> {
    if (item.type === "function_call") return this.functionCall(index, item);
    if (item.type === "reasoning") {
      await this.openReasoning(index, item.id);
      const text = item.content[0]!.text;
      if (text !== "") await this.reasoningDelta(index, item.id, text);
      return this.closeReasoning(index, item);
    }
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

/**
 * The text as one message, its `output_text` deltas relayed as they come. `index` is its
 * place in the output (1 after a reasoning item).
 */
export class MessageStream implements OutputStream {
  readonly #events: ResponseEvents;
  readonly #id = responsesId("msg");
  readonly #withLogprobs: boolean;
  readonly #index: number;
  #opened = false;
  #text = "";
  readonly #tokens: TokenLogprob[] = [];

  constructor(events: ResponseEvents, withLogprobs: boolean, index = 0) {
    this.#events = events;
    this.#withLogprobs = withLogprobs;
    this.#index = index;
  }

  async text(delta: string, logprobs: readonly TokenLogprob[] | null): Promise<void> {
    await this.#open();
    this.#text += delta;
    if (logprobs) this.#tokens.push(...logprobs);
    await this.#events.textDelta(this.#index, this.#id, delta, this.#withLogprobs ? (logprobs ?? []) : null);
  }

  async finish(status: "completed" | "incomplete"): Promise<OutputItem[]> {
    await this.#open();
    const item = this.#item(status);
    await this.#events.closeMessage(this.#index, item);
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
    await this.#events.openMessage(this.#index, this.#id);
  }
}

/**
 * A forced call's text (see tool-call-stream.ts) as `function_call` items: each added when
 * its name is written, its arguments relayed as `function_call_arguments.delta` events as
 * they are generated, and done when the next call starts or the job ends. `first` is the
 * first call's place in the output (1 after a reasoning item).
 */
export class FunctionCallStream implements OutputStream {
  readonly #events: ResponseEvents;
  readonly #parser = new ToolCallStreamParser();
  readonly #items: FunctionCallItem[] = [];
  readonly #first: number;
  #text = "";

  constructor(events: ResponseEvents, first = 0) {
    this.#events = events;
    this.#first = first;
  }

  async text(delta: string): Promise<void> {
    this.#text += delta;
    for (const event of this.#parser.push(delta)) {
      if (event.type === "call") {
        await this.#close("completed");
        const item = functionCallItem(responsesId("fc"), "in_progress", newToolCallId(), event.name, "");
        this.#items.push(item);
        await this.#events.addCall(this.#first + event.index, item);
      } else {
        const item = this.#items[event.index]!;
        item.arguments += event.text;
        await this.#events.argumentsDelta(this.#first + event.index, item.id, event.text);
      }
    }
  }

  async finish(status: "completed" | "incomplete"): Promise<OutputItem[]> {
    await this.#close(status);
    if (this.#items.length > 0) return this.#items;
    // No call was written (the output was cut before its first name): the text, as a message.
    const item = messageItem(responsesId("msg"), status, [outputText(this.#text, null)]);
    await this.#events.item(this.#first, item);
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
    await this.#events.closeCall(this.#first + index, item);
  }
}

/**
 * A reasoning model's streamed thoughts as one reasoning item at the start of the output:
 * added at the first thought chunk, each chunk a `reasoning_text.delta`, and done when the
 * answer begins (or the job ends). Thought text after the answer began (R1-style templates
 * open the response with the thought, so they write none) is kept in the item of the final
 * response, without events.
 */
export class ReasoningStream {
  readonly #events: ResponseEvents;
  #item: ReasoningItem | null = null;

  constructor(events: ResponseEvents) {
    this.#events = events;
  }

  /** Output items before the answer's: 1 once a thought was streamed, else 0. */
  get count(): number {
    return this.#item ? 1 : 0;
  }

  async text(delta: string): Promise<void> {
    if (delta === "") return;
    if (this.#item === null) {
      this.#item = reasoningItem(responsesId("rs"), "in_progress", "");
      await this.#events.openReasoning(0, this.#item.id);
    }
    this.#item.content[0]!.text += delta;
    if (this.#item.status === "in_progress") await this.#events.reasoningDelta(0, this.#item.id, delta);
  }

  /** Ends the thought, if one is open: `completed` when the answer begins, `incomplete` when cut before it. */
  async close(status: "completed" | "incomplete"): Promise<void> {
    if (this.#item === null || this.#item.status !== "in_progress") return;
    this.#item.status = status;
    await this.#events.closeReasoning(0, this.#item);
  }

  /** The reasoning item, if any (an open one as `incomplete`). */
  items(): ReasoningItem[] {
    if (this.#item === null) return [];
    const { id, status, content } = this.#item;
    return [reasoningItem(id, status === "in_progress" ? "incomplete" : status, content[0]!.text)];
  }
}
