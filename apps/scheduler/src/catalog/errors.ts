import { CorralError } from "@corral/shared";

/** `models.yaml` could not be read, parsed or validated. Raised at start, before anything runs. */
export class ModelsFileError extends CorralError {
  override readonly name = "ModelsFileError";
  /** Absolute path of the bad file. */
  readonly file: string;
  /** Dotted path of the bad field (`models.2.context_size`), or null when the file itself is bad. */
  readonly field: string | null;

  constructor(file: string, field: string | null, message: string, cause?: unknown) {
    super(`${file}: ${field === null ? "" : `${field}: `}${message}`, {
      code: "invalid_models_file",
      param: field,
      cause,
    });
    this.file = file;
    this.field = field;
  }
}
