import { z } from "zod";
import { InvalidRequestError, ValidationError, type JobChatMessage, type JobToolCall } from "@corral/shared";
import { UnsupportedFeatureError } from "./errors.js";

/** `/v1/responses` input items, read as the chat messages the model is shown. */

const TextPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const MessageItem = z.looseObject({
  type: z.literal("message").optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([z.string(), z.array(TextPart)], { error: "expected a string or an array of content parts" }),
});
const FunctionCallItem = z.looseObject({
  type: z.literal("function_call"),
  call_id: z.string().min(1).max(128),
  name: z.string(),
  arguments: z.string(),
});
const FunctionCallOutputItem = z.looseObject({
  type: z.literal("function_call_output"),
  call_id: z.string().min(1).max(128),
  output: z.union([z.string(), z.array(TextPart)], { error: "expected a string or an array of content parts" }),
});

/** An earlier response's reasoning item, sent back with its output (its `content` as Corral writes it). */
const ReasoningItem = z.looseObject({
  type: z.literal("reasoning"),
  summary: z.array(z.unknown()).optional(),
  content: z.array(z.looseObject({ type: z.string(), text: z.string() })).nullish(),
});

/**
 * Input items as chat messages: messages keep their role (`developer` is `system`),
 * consecutive `function_call` items are one assistant turn carrying those calls, and a
 * `function_call_output` is a `tool` message with the call's result, as the chat route
 * carries them to the worker (which renders them for its model: see @corral/llama's
 * tool-calls.ts).
 * `reasoning` items (an earlier turn's thoughts, sent back with its output) are left out of
 * the prompt, as reasoning models' chat templates (DeepSeek R1's) drop earlier thoughts.
 */
export function inputMessages(items: readonly unknown[]): JobChatMessage[] {
  const messages: JobChatMessage[] = [];
  const names = new Map<string, string>();
  let calls: JobToolCall[] = [];
  const flushCalls = () => {
    if (calls.length === 0) return;
    messages.push({ role: "assistant", content: "", tool_calls: calls });
    calls = [];
  };
  for (const [i, item] of items.entries()) {
    const at = `input.${i}`;
    const type = typeof item === "object" && item !== null && "type" in item ? item.type : "message";
    if (type === "reasoning") {
      // Checked, then skipped; it does not end a run of function calls.
      parseItem(ReasoningItem, item, at);
      continue;
    }
    if (type === "function_call") {
      const call = parseItem(FunctionCallItem, item, at);
      names.set(call.call_id, call.name);
      try {
        JSON.parse(call.arguments);
      } catch {
        throw new InvalidRequestError(
          `Invalid value for \`${at}.arguments\`: expected a JSON string.`,
          `${at}.arguments`,
        );
      }
      calls.push({ id: call.call_id, name: call.name, arguments: call.arguments });
      continue;
    }
    flushCalls();
    if (type === "message") {
      const message = parseItem(MessageItem, item, at);
      const role = message.role === "developer" ? "system" : message.role;
      messages.push({ role, content: partsText(message.content, `${at}.content`, role) });
    } else if (type === "function_call_output") {
      const output = parseItem(FunctionCallOutputItem, item, at);
      const name = names.get(output.call_id);
      messages.push({
        role: "tool",
        content: partsText(output.output, `${at}.output`, "user"),
        tool_call_id: output.call_id,
        ...(name !== undefined ? { name } : {}),
      });
    } else if (type === "item_reference") {
      unsupported(
        `${at}.type`,
        "Corral's /v1/responses is stateless, so `item_reference` inputs cannot be resolved; send the items themselves (with the AI SDK, set providerOptions.openai.store to false).",
      );
    } else {
      unsupported(
        `${at}.type`,
        `Input items of type \`${String(type)}\` are not supported; only \`message\`, \`function_call\`, \`function_call_output\` and \`reasoning\`.`,
      );
    }
  }
  flushCalls();
  if (messages.length === 0) throw new InvalidRequestError("`input` has no messages.", "input");
  return messages;
}

function parseItem<T extends z.ZodType>(schema: T, item: unknown, at: string): z.infer<T> {
  const parsed = schema.safeParse(item);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, `${at}.`);
  return parsed.data;
}

/** A content string, or its text parts (`input_text`; `output_text` in assistant turns) joined with newlines. */
function partsText(content: string | readonly z.infer<typeof TextPart>[], at: string, role: string): string {
  if (typeof content === "string") return content;
  const accepted = role === "assistant" ? ["output_text", "input_text"] : ["input_text"];
  return content
    .map((part, j) => {
      if (!accepted.includes(part.type)) {
        unsupported(
          `${at}.${j}.type`,
          `Content parts of type \`${part.type}\` are not supported here; only ${accepted.map((t) => `\`${t}\``).join(" and ")}.`,
        );
      }
      if (part.text === undefined) {
        throw new InvalidRequestError(`Invalid value for \`${at}.${j}.text\`: expected a string.`, `${at}.${j}.text`);
      }
      return part.text;
    })
    .join("\n");
}

const unsupported = (param: string, message: string): never => {
  throw new UnsupportedFeatureError(message, param, "unsupported_value");
};
