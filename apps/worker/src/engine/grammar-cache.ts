import type { ResponseFormat } from "@corral/shared";
import type { GbnfJsonSchema, Llama, LlamaGrammar } from "node-llama-cpp";
import { UnsupportedSchemaError, planJsonSchemaGrammar, slotConst, slotRuleName } from "@corral/shared";
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
    const plan = planJsonSchemaGrammar(format.json_schema.schema);
    const key = JSON.stringify(plan);
    let grammar = this.#schemas.get(key);
    if (grammar) {
      this.#schemas.delete(key);
    } else {
      grammar = this.#create(plan.schema, plan.slots).catch((error: unknown) => {
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

  /**
   * node-llama-cpp's grammar for the schema; with slots, its GBNF text with each slot's
   * placeholder literal replaced by a reference to the slot's own rule (see json-schema.ts).
   */
  async #create(schema: Record<string, unknown>, slots: readonly string[]): Promise<LlamaGrammar> {
    const base = await this.#llama.createGrammarForJsonSchema<GbnfJsonSchema>(schema as GbnfJsonSchema);
    if (slots.length === 0) return base;
    let text = base.grammar;
    slots.forEach((rule, i) => {
      const placeholder = JSON.stringify(JSON.stringify(slotConst(i)));
      if (!text.includes(placeholder)) throw new Error(`slot ${i} is not in the generated grammar`);
      text = `${text.replaceAll(placeholder, slotRuleName(i))}\n${slotRuleName(i)} ::= ${rule}`;
    });
    return await this.#llama.createGrammar({
      grammar: text,
      stopGenerationTriggers: base.stopGenerationTriggers,
      trimWhitespaceSuffix: true,
    });
  }
}
