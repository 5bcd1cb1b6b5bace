// Types for layout.mjs, which the quantizer worker (plain JavaScript, started without a loader) imports.
export declare const EXPECTED_LLAMA_VERSION: string;
export declare const EXPECTED_PACKAGE: string;
export declare const EXPECTED_DEFAULTS: Readonly<Record<string, number | boolean | null>>;
export declare function versionProblem(version: unknown, library?: string): string | undefined;
export declare function defaultsProblem(defaults: Record<string, unknown> | null | undefined, version: unknown, library?: string): string | undefined;
