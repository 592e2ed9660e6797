import type { CorralError } from "@corral/shared";

/** The one JSON shape of every error the API returns (OpenAI's). */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export const errorBody = (error: CorralError): ErrorBody => ({
  error: { message: error.message, type: error.type, param: error.param, code: error.code },
});
