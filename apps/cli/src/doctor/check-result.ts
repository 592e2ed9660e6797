export type CheckLevel = "ok" | "warn" | "fail";

/** One finding of `corral doctor`. */
export interface CheckResult {
  name: string;
  level: CheckLevel;
  detail: string;
  /** What to do about a warn or fail: a command, a package, a variable, or a section of the docs. */
  fix?: string;
}
