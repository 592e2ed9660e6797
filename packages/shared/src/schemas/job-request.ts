import { z } from "zod";

/** A chat message in OpenAI's shape, restricted to the roles Corral supports. */
export const ChatMessage = z.object({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/** Upper bound for `max_tokens` before the model's own context is known. */
export const MAX_TOKENS_LIMIT = 1_048_576;

/** Most token ids one `logit_bias` may name. */
export const MAX_LOGIT_BIAS = 1024;

/**
 * OpenAI's `logit_bias`: token ids (as JSON object keys) to a bias of -100..100 added to
 * the token's logit before sampling (-100 in effect bans it, 100 in effect forces it).
 */
export const LogitBias = z
  .record(z.string().regex(/^(0|[1-9][0-9]{0,9})$/), z.number().min(-100).max(100), {
    error: (issue) =>
      issue.code === "invalid_key" ? "keys must be token ids (non-negative integers in a string)" : undefined,
  })
  .refine((bias) => Object.keys(bias).length <= MAX_LOGIT_BIAS, {
    error: `at most ${MAX_LOGIT_BIAS} token ids`,
  });
export type LogitBias = z.infer<typeof LogitBias>;

/** OpenAI's `frequency_penalty` and `presence_penalty`: -2..2, 0 is off. */
export const Penalty = z.number().min(-2).max(2);

/** Most `top_logprobs` a job may ask for (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;

/**
 * How much a reasoning model (one whose chat template has thought segments, such as
 * DeepSeek R1) may think: OpenAI's `reasoning_effort`, mapped to a budget of thought
 * tokens ({@link REASONING_EFFORT_BUDGETS}). `none` turns thinking off.
 */
export const ReasoningEffort = z.enum(["none", "minimal", "low", "medium", "high"]);
export type ReasoningEffort = z.infer<typeof ReasoningEffort>;

/** The thought-token budget of each `reasoning_effort`; `medium` is the default, as on OpenAI. */
export const REASONING_EFFORT_BUDGETS: Readonly<Record<ReasoningEffort, number>> = {
  none: 0,
  minimal: 256,
  low: 1024,
  medium: 4096,
  high: 16384,
};

/** Largest thought-token budget a job may ask for (`max_reasoning_tokens`). */
export const MAX_REASONING_BUDGET = MAX_TOKENS_LIMIT;

/**
 * A request's thought-token budget: `max_reasoning_tokens` as given, else its
 * `reasoning_effort`'s; undefined when it sets neither (the worker then uses `medium`'s).
 */
export function reasoningBudget(request: {
  reasoning_effort?: ReasoningEffort | null;
  max_reasoning_tokens?: number | null;
}): number | undefined {
  if (request.max_reasoning_tokens != null) return request.max_reasoning_tokens;
  return request.reasoning_effort != null ? REASONING_EFFORT_BUDGETS[request.reasoning_effort] : undefined;
}

/** Sampling options shared by native jobs, OpenAI requests and batch lines. */
export const SamplingOptions = z.object({
  max_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).default(256),
  temperature: z.number().min(0).max(2).default(0.8),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).max(1_000_000).optional(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .optional(),
  stop: z.array(z.string().min(1).max(256)).max(4).optional(),
  /** Lowers a token's logit by `frequency_penalty` × the times it was generated so far. */
  frequency_penalty: Penalty.optional(),
  /** Lowers a token's logit by `presence_penalty` once it was generated. */
  presence_penalty: Penalty.optional(),
  logit_bias: LogitBias.optional(),
});
export type SamplingOptions = z.infer<typeof SamplingOptions>;

/** Response formats the engine can enforce with a grammar. */
export const ResponseFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({
    type: z.literal("json_schema"),
    json_schema: z.object({
      name: z.string().min(1).max(64),
      schema: z.record(z.string(), z.unknown()),
      strict: z.boolean().nullish(),
      description: z.string().optional(),
    }),
  }),
]);
export type ResponseFormat = z.infer<typeof ResponseFormat>;

/** Priority a client may ask for: 1 is the most urgent, 100 the least. */
export const JobPriority = z.number().int().min(1).max(100);

/**
 * A native job request (`POST /v1/jobs`). Exactly one of `prompt` (a completion) or
 * `messages` (a chat) must be given.
 */
export const JobRequest = SamplingOptions.extend({
  model: z.string().min(1).max(256),
  prompt: z.string().max(4_000_000).optional(),
  messages: z.array(ChatMessage).min(1).max(1024).optional(),
  response_format: ResponseFormat.optional(),
  priority: JobPriority.optional(),
  metadata: z.record(z.string().max(64), z.string().max(512)).optional(),
  /** Chats on reasoning models: the thought budget, as on the OpenAI route. */
  reasoning_effort: ReasoningEffort.optional(),
  max_reasoning_tokens: z.number().int().min(0).max(MAX_REASONING_BUDGET).optional(),
})
  .strict()
  .superRefine((req, ctx) => {
    const hasPrompt = req.prompt !== undefined;
    const hasMessages = req.messages !== undefined;
    if (hasPrompt === hasMessages) {
      ctx.addIssue({
        code: "custom",
        path: [hasPrompt ? "messages" : "prompt"],
        message: hasPrompt
          ? "give either `prompt` or `messages`, not both"
          : "one of `prompt` or `messages` is required",
      });
    }
    if (req.reasoning_effort !== undefined && req.max_reasoning_tokens !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["max_reasoning_tokens"],
        message: "give either `reasoning_effort` or `max_reasoning_tokens`, not both",
      });
    }
    if (req.metadata && Object.keys(req.metadata).length > 16) {
      ctx.addIssue({ code: "custom", path: ["metadata"], message: "at most 16 metadata keys" });
    }
  });
export type JobRequest = z.infer<typeof JobRequest>;
