// Types for direct-io.mjs (plain JavaScript, which worker threads started without a loader import).
import type { FileHandle } from "node:fs/promises";

/** Whether alignedBuffers can make buffers of `size` (a multiple of 64 KiB, WebAssembly on), short of running out of address space. */
export declare function canAlign(size: number): boolean;

/** `count` page-aligned buffers of `size` bytes (a multiple of 64 KiB), or undefined where none can be made. */
export declare function alignedBuffers(size: number, count: number): Buffer[] | undefined;

/** Shared memory of at least `bytes` that starts on a page (O_DIRECT writes can come from it), or undefined where none can be made. */
export declare function alignedSharedMemory(bytes: number): SharedArrayBuffer | undefined;

/** Maps the pages of `bytes` (faults them in ahead of use) without changing a byte. */
export declare function mapPages(bytes: Uint8Array): void;

/** How many bytes from `at` to the next boundary; 0 on one. */
export declare function toBoundary(at: number): number;

/** The file opened again with O_DIRECT (`flags` besides it), or undefined where that is refused. */
export declare function openDirect(path: string, flags: number): Promise<FileHandle | undefined>;

/**
 * openDirect as a plain descriptor (a FileHandle closes itself when collected, which a descriptor
 * handed to a reader that closes it must not do).
 */
export declare function openDirectFd(path: string, flags: number): Promise<number | undefined>;

/** openDirect for a thread that does nothing else while it waits. */
export declare function openDirectSync(path: string, flags: number): number | undefined;

/** `n` bytes of `buf` to write at `at`. */
export interface Slab {
  buf: Buffer;
  n: number;
  at: number;
}

/**
 * Writes the slab through `direct` when it is aligned and one is given, the rest of it (after a
 * short or refused direct write) or all of it through `cached`.
 */
export declare function writeSlab(cached: FileHandle, direct: FileHandle | undefined, slab: Slab): Promise<void>;

/**
 * Slabs that follow one another in the file (each starting where the one before ends): one
 * vectored write through `direct` when all are aligned, the rest as writeSlab writes them.
 */
export declare function writeSlabs(cached: FileHandle, direct: FileHandle | undefined, slabs: Slab[]): Promise<void>;

/** writeSlab for files open as descriptors. */
export declare function writeSlabFd(cached: number, direct: number | undefined, slab: Slab): Promise<void>;

/**
 * Reads the file's bytes from `pos` towards `upTo` into `buf`; returns where in `buf` they are and
 * how many (0 at the end of the file). Through `direct` the read covers whole pages around them,
 * so it may start before `pos` and end after `upTo`; a refused direct read is made again through
 * `cached`, and `onRefused` is told so that later reads go there at once.
 */
export declare function readSpanSync(cached: number, direct: number | undefined, buf: Buffer, pos: number, upTo: number, onRefused: () => void): { at: number; n: number };

/** readSpanSync on the thread pool. */
export declare function readSpan(cached: number, direct: number | undefined, buf: Buffer, pos: number, upTo: number, onRefused: () => void): Promise<{ at: number; n: number }>;
