/**
 * Reads a forced tool call's output, `{"tool_calls": [{"name": …, "arguments": {…}}, …]}`
 * (the grammar of `tool_choice` `required` or named, see tools.ts), as its text is
 * generated, so a stream can send each call's name as soon as it is written and its
 * arguments token by token, in OpenAI's `delta.tool_calls` format.
 *
 * A small JSON scanner: it tracks strings and nesting only, and relies on the grammar for
 * the rest. The arguments are relayed as the model writes them (with its whitespace);
 * joined, they are the call's arguments object as JSON text.
 */

export type ToolCallStreamEvent =
  /** Call `index` is named (always before its arguments). */
  | { type: "call"; index: number; name: string }
  /** More of call `index`'s arguments text. */
  | { type: "arguments"; index: number; text: string };

/** Depth of a call object: the top object (1), its `tool_calls` array (2), a call (3). */
const CALL_DEPTH = 3;

export class ToolCallStreamParser {
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** At the call's depth: whether the next string is a key (after `{` or `,`) or a value (after `:`). */
  #expectKey = false;
  #key = "";
  /** The string being read at the call's depth (a key or the name), raw, quotes included. */
  #raw: string | null = null;
  /** Calls started so far; the current one is `#calls - 1`. */
  #calls = 0;
  #named = false;
  #namedCalls = 0;
  /** Reading the current call's arguments value. */
  #inArguments = false;
  /** Arguments text held until the call is named (only if the model wrote them first). */
  #pending = "";

  /** The events `text` (the next piece of the output) completes. */
  push(text: string): ToolCallStreamEvent[] {
    const events: ToolCallStreamEvent[] = [];
    let args = "";
    const flushArgs = () => {
      if (args === "") return;
      if (this.#named) events.push({ type: "arguments", index: this.#calls - 1, text: args });
      else this.#pending += args;
      args = "";
    };
    for (const char of text) {
      if (this.#inArguments) {
        args += char;
        this.#scan(char);
        if (!this.#inString && this.#depth === CALL_DEPTH) this.#inArguments = false;
        continue;
      }
      const depthBefore = this.#depth;
      const wasInString = this.#inString;
      this.#scan(char);
      if (depthBefore !== CALL_DEPTH && this.#depth !== CALL_DEPTH) continue;
      if (this.#raw !== null) {
        this.#raw += char;
        if (!this.#inString) this.#endString(events);
        continue;
      }
      if (!wasInString && this.#inString && depthBefore === CALL_DEPTH) {
        this.#raw = char;
        continue;
      }
      if (depthBefore === CALL_DEPTH - 1 && this.#depth === CALL_DEPTH) {
        // A new call object.
        flushArgs();
        this.#calls++;
        this.#named = false;
        this.#pending = "";
        this.#expectKey = true;
      } else if (depthBefore === CALL_DEPTH && !this.#inString) {
        if (char === ",") this.#expectKey = true;
        else if (char === ":") this.#expectKey = false;
        else if (!this.#expectKey && this.#key === "arguments" && !/\s/.test(char)) {
          // The arguments value starts here (an object, or a scalar the scanner ends at `,`/`}`).
          if (this.#depth > CALL_DEPTH) {
            this.#inArguments = true;
            args += char;
          }
        }
      }
    }
    flushArgs();
    return events;
  }

  #endString(events: ToolCallStreamEvent[]): void {
    const raw = this.#raw!;
    this.#raw = null;
    let value: string;
    try {
      value = JSON.parse(raw) as string;
    } catch {
      return;
    }
    if (this.#expectKey) {
      this.#key = value;
      return;
    }
    if (this.#key === "name" && !this.#named && this.#calls > 0) {
      this.#named = true;
      this.#namedCalls++;
      events.push({ type: "call", index: this.#calls - 1, name: value });
      if (this.#pending !== "") {
        events.push({ type: "arguments", index: this.#calls - 1, text: this.#pending });
        this.#pending = "";
      }
    }
  }

  /** Tracks strings (with escapes) and nesting. */
  #scan(char: string): void {
    if (this.#inString) {
      if (this.#escaped) this.#escaped = false;
      else if (char === "\\") this.#escaped = true;
      else if (char === '"') this.#inString = false;
      return;
    }
    if (char === '"') this.#inString = true;
    else if (char === "{" || char === "[") this.#depth++;
    else if (char === "}" || char === "]") this.#depth--;
  }

  /** How many calls were named. */
  get calls(): number {
    return this.#namedCalls;
  }
}
