import type { ResponseFormat } from "@corral/shared";
import type { GbnfJsonSchema, Llama, LlamaGrammar } from "node-llama-cpp";
import { UnsupportedSchemaError, normalizeJsonSchemaForGrammar } from "@corral/shared";
import { errorMessage } from "./errors.js";

/**
 * Grammars for response formats, built once per distinct schema. A `LlamaGrammar` is
 * immutable (each generation makes its own evaluation state), so models and concurrent
 * sequences share them.
 */
export class GrammarCache {
  readonly #llama: Llama;
  readonly #limit: number;
  #json: Promise<LlamaGrammar> | null = null;
  /** Insertion-ordered, so the first key is the least recently used. */
  readonly #schemas = new Map<string, Promise<LlamaGrammar>>();

  constructor(llama: Llama, limit = 64) {
    this.#llama = llama;
    this.#limit = limit;
  }

  /** The grammar for a response format, or undefined for plain text. */
  async get(format: ResponseFormat | undefined): Promise<LlamaGrammar | undefined> {
    if (format === undefined || format.type === "text") return undefined;
    if (format.type === "json_object") {
      this.#json ??= this.#llama.getGrammarFor("json");
      return await this.#json;
    }
    const schema = normalizeJsonSchemaForGrammar(format.json_schema.schema);
    const key = JSON.stringify(schema);
    let grammar = this.#schemas.get(key);
    if (grammar) {
      this.#schemas.delete(key);
    } else {
      grammar = this.#llama
        .createGrammarForJsonSchema<GbnfJsonSchema>(schema as GbnfJsonSchema)
        .catch((error: unknown) => {
          this.#schemas.delete(key);
          throw new UnsupportedSchemaError("", `the grammar generator rejected it: ${errorMessage(error)}`, {
            cause: error,
          });
        });
    }
    this.#schemas.set(key, grammar);
    for (const oldest of this.#schemas.keys()) {
      if (this.#schemas.size <= this.#limit) break;
      this.#schemas.delete(oldest);
    }
    return await grammar;
  }
}
