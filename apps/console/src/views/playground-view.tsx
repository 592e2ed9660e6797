import { useEffect, useRef, useState } from "preact/hooks";
import { api, streamChat, type List, type Model, type StreamResult } from "../api";
import { errorText } from "../format";

interface Turn {
  role: "user" | "assistant";
  content: string;
}

interface Stats {
  result: StreamResult;
  tokensPerSecond: number | null;
  seconds: number;
}

const EXAMPLE_SCHEMA = `{
  "type": "object",
  "properties": { "title": { "type": "string" }, "moral": { "type": "string" } },
  "required": ["title", "moral"]
}`;

/**
 * Chat with any catalog model over `POST /v1/chat/completions` with `stream: true`: the
 * reply appears as it is generated. Sampling settings, a system prompt and an optional JSON
 * schema (`response_format: json_schema`); after each reply, tokens/s and the slot that ran it.
 */
export function PlaygroundView() {
  const [models, setModels] = useState<Model[]>([]);
  const [model, setModel] = useState("");
  const [system, setSystem] = useState("");
  const [prompt, setPrompt] = useState("");
  const [temperature, setTemperature] = useState("0.8");
  const [topP, setTopP] = useState("1");
  const [maxTokens, setMaxTokens] = useState("128");
  const [seed, setSeed] = useState("");
  const [useSchema, setUseSchema] = useState(false);
  const [schema, setSchema] = useState(EXAMPLE_SCHEMA);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [streaming, setStreaming] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [stats, setStats] = useState<Stats | null>(null);
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    api<List<Model>>("GET", "/v1/models")
      .then((list) => {
        setModels(list.data);
        setModel((current) => current || list.data[0]?.id || "");
      })
      .catch((caught) => setError(`Could not list the models: ${errorText(caught)}`));
    return () => abort.current?.abort();
  }, []);

  const send = async (event: Event) => {
    event.preventDefault();
    if (!prompt.trim() || !model) return;
    setError(null);
    const body: Record<string, unknown> = {
      model,
      messages: [
        ...(system.trim() ? [{ role: "system", content: system }] : []),
        ...turns,
        { role: "user", content: prompt },
      ],
      temperature: Number(temperature),
      top_p: Number(topP),
      max_tokens: Number(maxTokens),
    };
    if (seed.trim() !== "") body.seed = Number(seed);
    if (useSchema) {
      try {
        body.response_format = {
          type: "json_schema",
          json_schema: { name: "output", schema: JSON.parse(schema) as unknown, strict: true },
        };
      } catch (caught) {
        setError(`The JSON schema is not valid JSON: ${errorText(caught)}`);
        return;
      }
    }
    const asked: Turn = { role: "user", content: prompt };
    setTurns((t) => [...t, asked]);
    setPrompt("");
    setStreaming("");
    setStats(null);
    setBusy(true);
    const controller = new AbortController();
    abort.current = controller;
    let text = "";
    const started = performance.now();
    try {
      const result = await streamChat(
        body,
        (piece) => {
          text += piece;
          setStreaming(text);
        },
        controller.signal,
      );
      const end = performance.now();
      const from = result.firstTokenAt ?? started;
      const seconds = (end - from) / 1000;
      const tokens = result.usage?.completion_tokens ?? null;
      setStats({
        result,
        seconds: (end - started) / 1000,
        tokensPerSecond: tokens !== null && seconds > 0 ? tokens / seconds : null,
      });
    } catch (caught) {
      setError(controller.signal.aborted ? "Stopped." : errorText(caught));
    } finally {
      setTurns((t) => [...t, { role: "assistant", content: text }]);
      setStreaming("");
      setBusy(false);
      abort.current = null;
    }
  };

  return (
    <section aria-labelledby="playground-title">
      <h1 id="playground-title">Playground</h1>
      <div class="columns playground">
        <form class="card settings" onSubmit={send} aria-label="Chat settings">
          <label for="pg-model">Model</label>
          <select id="pg-model" value={model} onChange={(e) => setModel(e.currentTarget.value)}>
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
              </option>
            ))}
          </select>
          <label for="pg-system">System prompt</label>
          <textarea id="pg-system" rows={2} value={system} onInput={(e) => setSystem(e.currentTarget.value)} />
          <div class="grid2">
            <span>
              <label for="pg-temperature">Temperature</label>
              <input
                id="pg-temperature"
                type="number"
                min="0"
                max="2"
                step="0.1"
                value={temperature}
                onInput={(e) => setTemperature(e.currentTarget.value)}
              />
            </span>
            <span>
              <label for="pg-top-p">Top p</label>
              <input
                id="pg-top-p"
                type="number"
                min="0"
                max="1"
                step="0.05"
                value={topP}
                onInput={(e) => setTopP(e.currentTarget.value)}
              />
            </span>
            <span>
              <label for="pg-max-tokens">Max tokens</label>
              <input
                id="pg-max-tokens"
                type="number"
                min="1"
                step="1"
                value={maxTokens}
                onInput={(e) => setMaxTokens(e.currentTarget.value)}
              />
            </span>
            <span>
              <label for="pg-seed">Seed (optional)</label>
              <input
                id="pg-seed"
                type="number"
                min="0"
                step="1"
                value={seed}
                onInput={(e) => setSeed(e.currentTarget.value)}
              />
            </span>
          </div>
          <label class="check">
            <input type="checkbox" checked={useSchema} onChange={(e) => setUseSchema(e.currentTarget.checked)} />{" "}
            Structured output (JSON schema)
          </label>
          {useSchema && (
            <>
              <label for="pg-schema">JSON schema</label>
              <textarea
                id="pg-schema"
                class="mono"
                rows={6}
                spellcheck={false}
                value={schema}
                onInput={(e) => setSchema(e.currentTarget.value)}
              />
            </>
          )}
          <label for="pg-prompt">Message</label>
          <textarea
            id="pg-prompt"
            rows={3}
            value={prompt}
            onInput={(e) => setPrompt(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void send(e);
            }}
            aria-describedby="pg-prompt-help"
          />
          <p id="pg-prompt-help" class="muted">
            Ctrl+Enter sends.
          </p>
          <div class="actions">
            <button type="submit" disabled={busy || !prompt.trim() || !model}>
              Send
            </button>
            {busy && (
              <button type="button" onClick={() => abort.current?.abort()}>
                Stop
              </button>
            )}
            <button
              type="button"
              class="link"
              disabled={busy}
              onClick={() => {
                setTurns([]);
                setStats(null);
              }}
            >
              Clear chat
            </button>
          </div>
        </form>
        <div class="card transcript" aria-label="Conversation">
          <ol class="plain" aria-live="polite" data-testid="transcript">
            {turns.map((turn, i) => (
              <li key={i} class={`turn ${turn.role}`}>
                <span class="role">{turn.role === "user" ? "You" : model}</span>
                <pre class="text">{turn.content}</pre>
              </li>
            ))}
            {busy && (
              <li class="turn assistant" aria-busy="true">
                <span class="role">{model}</span>
                <pre class="text" data-testid="streaming">
                  {streaming || "…"}
                </pre>
              </li>
            )}
          </ol>
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          {stats && (
            <p class="muted" data-testid="stats">
              {stats.result.usage?.completion_tokens ?? "?"} tokens in {stats.seconds.toFixed(2)} s
              {stats.tokensPerSecond !== null && ` · ${stats.tokensPerSecond.toFixed(1)} tokens/s`} · slot{" "}
              <span class="mono" data-testid="slot">
                {stats.result.worker ?? "unknown"}
              </span>
              {stats.result.gpu !== null && ` (GPU ${stats.result.gpu})`}
              {stats.result.queueMs !== null && ` · queued ${stats.result.queueMs} ms`}
              {stats.result.finishReason && ` · finish: ${stats.result.finishReason}`}
              {stats.result.jobId && (
                <>
                  {" "}
                  · job <span class="mono">{stats.result.jobId}</span>
                </>
              )}
            </p>
          )}
        </div>
      </div>
    </section>
  );
}
