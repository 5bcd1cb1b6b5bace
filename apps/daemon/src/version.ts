import pkg from "../package.json" with { type: "json" };

/** The daemon's version, reported by /api/version and `corral --version`. */
export const VERSION: string = pkg.version;
