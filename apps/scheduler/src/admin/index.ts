export { createBullBoardRouter, type BullBoardRouterOptions } from "./bull-board.js";
export { adminAuth, ADMIN_BASIC_CHALLENGE } from "./admin-auth.js";
