import { CorralError } from "@corral/shared";

/** A tenant has used its seconds of audio for today (`CORRAL_TENANT_AUDIO_SECONDS_PER_DAY`): 429. */
export class AudioBudgetExceededError extends CorralError {
  override readonly name = "AudioBudgetExceededError";
  override readonly status = 429;
  override readonly type = "insufficient_quota";
  override readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message, { code: "audio_budget_exceeded", param: "file" });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
