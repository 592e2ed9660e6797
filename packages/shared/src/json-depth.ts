/**
 * How deep a parsed JSON value nests, checked without recursion, so that a value nested
 * far deeper than anything Corral accepts is turned down before code that recurses over it
 * (JSON.stringify, the grammar generator, Redis's cjson) overflows its stack.
 */

/** Deepest nesting accepted in a request body or a batch line. */
export const MAX_JSON_DEPTH = 256;

/** Whether `value` nests more than `max` levels of arrays and objects (a scalar is depth 0). */
export function exceedsJsonDepth(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== "object" || current === null) continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
