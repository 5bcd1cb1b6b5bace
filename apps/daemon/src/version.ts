// The daemon's version, read from its package.json so that the number has one home.

import pkg from "../package.json" with { type: "json" };

/** The daemon's version, reported by /api/version and `corral --version`. */
export const VERSION: string = pkg.version;
