/** Who is calling: the tenant an API key maps to. */
export interface Principal {
  tenant: string;
  /** The admin key: accepted on every route, required on admin routes. */
  isAdmin: boolean;
}

/** The tenant of callers when no API keys are configured (open mode). */
export const OPEN_TENANT = "default";
/** The tenant of the admin principal. */
export const ADMIN_TENANT = "admin";
