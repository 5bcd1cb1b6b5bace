// Types for native-library.mjs, shared by build-mtmd.mjs and the worker (plain JavaScript).
export declare const VISION_ABI: number;
export declare const BUILD_RECORD: string;
export interface VisionSources {
  bundle: string;
  binsDir: string;
  llamaLib: string;
  ggmlLib: string;
  cacheRoot: string;
}
export interface VisionBuildRecord {
  key: string;
  library: string;
  commit: string;
  llamaLib: string;
  abi: number;
  seconds: number;
}
export declare function visionSources(): VisionSources | Error;
export declare function bundleCommit(bundle: string): string | undefined;
export declare function builtVision(sources?: VisionSources | Error): VisionBuildRecord | undefined;
