// Types for build-mtmd.mjs, which runs without TypeScript (from `npm run build` and on its own).
export type VisionBuildResult = { ok: true; library: string; seconds: number; cached: boolean } | { ok: false; reason: string };
export declare function buildVision(opts?: { jobs?: number; log?: (line: string) => void }): Promise<VisionBuildResult>;
export declare function describeVisionBuild(r: VisionBuildResult): string | undefined;
