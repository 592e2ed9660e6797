import type { Request, Response } from "express";
import type { CatalogModel, JobRecords, RedisKeys, ResponseFormat } from "@corral/shared";
import type { JobInput } from "../../jobs/types.js";
import { corralHeaders } from "./corral-headers.js";
import { chatJobInputs } from "../../openai-format/job-inputs.js";
import { parseResponsesRequest } from "../../openai-format/responses-request.js";
import { responseObject, responseOutcome, responsesId } from "../../openai-format/responses-object.js";
import type { RequestScope, JobKind } from "./request-scope.js";
import { streamResponses, streamWholeResponse } from "./responses-stream.js";
import type { StreamHub } from "./stream-hub.js";

/** What the route borrows from the OpenAI router: its checks, job submission and stream bookkeeping. */
export interface ResponsesRouteDeps {
  prepare(
    res: Response,
    kind: JobKind,
    modelName: string,
    format: ResponseFormat | undefined,
  ): Promise<{ model: CatalogModel; scope: RequestScope }>;
  submit(res: Response, scope: RequestScope, inputs: JobInput[]): Promise<void>;
  holdStream(res: Response): void;
  clock: () => number;
  streams: StreamHub;
  keys: RedisKeys;
  records: JobRecords;
  relay?: { blockMs?: number; settleMs?: number };
}

/**
 * `POST /v1/responses`, stateless: the request runs as one chat job (same lane, tenant
 * quotas, fairness and cancellation as `/v1/chat/completions`), and its result is
 * answered as a response object, or streamed as `response.*` events. The request's
 * `metadata` is kept in the job's metadata. docs/api.md lists every field.
 */
export function responsesHandler(deps: ResponsesRouteDeps): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    const { chat, settings, logprobs } = parseResponsesRequest(req.body);
    if (chat.stream) deps.holdStream(res);
    // text.format was checked by the parser, under its own field name.
    const { model, scope } = await deps.prepare(res, "chat", chat.model, undefined);
    const head = { id: responsesId("resp"), created_at: Math.floor(deps.clock() / 1000), model: model.id };
    // With tool_choice auto the output is a call or a message, known only at its end: such streams are sent
    // when it is done. A forced call streams as it is generated.
    const relay = chat.stream && (chat.tools === null || chat.tools.required);
    const inputs = chatJobInputs(chat, model, relay).map((input) => ({
      ...input,
      ...(Object.keys(settings.metadata).length > 0 ? { metadata: { ...settings.metadata, ...input.metadata } } : {}),
    }));
    await deps.submit(res, scope, inputs);
    if (relay) {
      await streamResponses({
        res,
        scope,
        head,
        settings,
        logprobs,
        tools: chat.tools,
        streams: deps.streams,
        keys: deps.keys,
        records: deps.records,
        ...(deps.relay ? { relay: deps.relay } : {}),
      });
      return;
    }
    const records = await scope.succeededRecords();
    if (!records) return;
    const result = records[0]!.result!;
    const outcome = responseOutcome(
      result.text,
      result.finish_reason,
      result.tool_calls,
      logprobs ? (result.logprobs ?? []) : null,
      result.reasoning,
    );
    const response = responseObject(head, settings, { ...outcome, usage: result.usage });
    if (chat.stream) {
      await streamWholeResponse(res, records, response);
      return;
    }
    res.set(corralHeaders(records, { timings: true })).json(response);
  };
}
