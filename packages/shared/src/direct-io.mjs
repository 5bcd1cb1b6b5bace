// Moving a blob's bytes between a file and page-aligned buffers past the page cache (O_DIRECT),
// where the buffer, the offset and the length allow it. On a virtual machine, pages new to the
// page cache cost the kernel more than receiving and hashing the bytes (README, "About the
// transfer figures"): there 1 GB written through the cache took 2.5 s of a core, with O_DIRECT
// 0.46 s of the disk and next to no CPU; reading 1 GB that is not cached, 0.3-0.7 s of system time
// through the cache and 0.06 past it. What is not aligned (the first bytes of a range that starts
// off a page, a blob's last bytes) goes through the cache, and so does everything on a filesystem
// that refuses O_DIRECT (tmpfs) or from a buffer that is not aligned. Reads and writes through the
// two descriptors of one file stay coherent: the kernel writes cached pages of a range back before
// a direct read of it.
//
// Plain JavaScript so that worker threads started without a loader (prefix-hash-worker.mjs) can
// import it; direct-io.d.mts gives its types. The registry writes uploads and reads blobs this
// way; the daemon writes a pulled blob and reads it back for its sha256 this way.

import { constants, open as openFd, openSync, read, readSync, write } from "node:fs";
import { open } from "node:fs/promises";

/** The alignment a file opened with O_DIRECT asks of buffers, offsets and lengths. */
const DIRECT_IO_ALIGNMENT = 4096;

const WASM_PAGE = 65536;

/** Whether alignedBuffers can make buffers of `size`, short of running out of address space. */
export function canAlign(size) {
  return size % WASM_PAGE === 0 && typeof WebAssembly === "object";
}

/**
 * `count` buffers of `size` bytes (a multiple of 64 KiB), each starting on a page. Node has no
 * aligned allocation; a WebAssembly memory is the one buffer V8 maps whole pages for (its start
 * is page-aligned). Undefined where WebAssembly is off (--jitless) or out of address space.
 */
export function alignedBuffers(size, count) {
  if (!canAlign(size)) return undefined;
  let memory;
  try {
    memory = new WebAssembly.Memory({ initial: (size / WASM_PAGE) * count });
  } catch {
    return undefined;
  }
  return Array.from({ length: count }, (_, i) => Buffer.from(memory.buffer, i * size, size));
}

/**
 * Shared memory of at least `bytes` (whole 64 KiB pages) that starts on a page, so that threads can
 * write files from it with O_DIRECT: a shared WebAssembly memory, whose buffer is a
 * SharedArrayBuffer. Undefined where WebAssembly or its shared memories are off, or out of memory.
 */
export function alignedSharedMemory(bytes) {
  if (typeof WebAssembly !== "object") return undefined;
  const pages = Math.ceil(bytes / WASM_PAGE);
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
  } catch {
    return undefined;
  }
}

/**
 * Maps the pages of `bytes` (memory from above, which the kernel hands out a page at a time on
 * first touch) by touching one word in each. A first touch costs a fault, on a virtual machine
 * about 10 µs (0.3 s for 128 MiB): done ahead, it is off the path of the transfer that would
 * otherwise take it. An atomic add of 0 leaves the word as it is, even while another thread or the
 * disk writes the same page.
 */
export function mapPages(bytes) {
  // Whole words, from the one `bytes` starts in: an Int32Array starts on a multiple of 4.
  const from = bytes.byteOffset - (bytes.byteOffset % 4);
  const words = new Int32Array(bytes.buffer, from, Math.floor((bytes.byteOffset + bytes.length - from) / 4));
  if (words.length === 0) return;
  for (let i = 0; i < words.length; i += DIRECT_IO_ALIGNMENT / 4) Atomics.add(words, i, 0);
  // The last page, where the stride stepped past its start.
  Atomics.add(words, words.length - 1, 0);
}

export function toBoundary(at) {
  return (DIRECT_IO_ALIGNMENT - (at % DIRECT_IO_ALIGNMENT)) % DIRECT_IO_ALIGNMENT;
}

const isAligned = (at, n) => at % DIRECT_IO_ALIGNMENT === 0 && n % DIRECT_IO_ALIGNMENT === 0;

/** A filesystem, or a buffer, that does not take direct I/O. */
const refused = (e) => e?.code === "EINVAL";

export async function openDirect(path, flags) {
  try {
    return await open(path, flags | constants.O_DIRECT);
  } catch (e) {
    if (refused(e)) return undefined;
    throw e;
  }
}

export function openDirectFd(path, flags) {
  return new Promise((resolve, reject) =>
    openFd(path, flags | constants.O_DIRECT, (e, fd) => {
      if (!e) resolve(fd);
      else if (refused(e)) resolve(undefined);
      else reject(e);
    }),
  );
}

export function openDirectSync(path, flags) {
  try {
    return openSync(path, flags | constants.O_DIRECT);
  } catch (e) {
    if (refused(e)) return undefined;
    throw e;
  }
}

/**
 * Writes the slab through `direct` when it is aligned and one is given, the rest of it (after a
 * short or refused direct write) or all of it through `cached`. The writes are functions so that
 * FileHandles and descriptors share it.
 */
async function writeSlabAt(cached, direct, { buf, n, at }) {
  let done = 0;
  if (direct && isAligned(at, n)) {
    try {
      done = await direct(buf, 0, n, at);
    } catch (e) {
      if (!refused(e)) throw e;
    }
  }
  while (done < n) done += await cached(buf, done, n - done, at + done);
}

const handleWrite = (h) => async (buf, offset, length, position) => (await h.write(buf, offset, length, position)).bytesWritten;

const fdWrite = (fd) => (buf, offset, length, position) =>
  new Promise((resolve, reject) => write(fd, buf, offset, length, position, (e, n) => (e ? reject(e) : resolve(n))));

export function writeSlab(cached, direct, slab) {
  return writeSlabAt(handleWrite(cached), direct && handleWrite(direct), slab);
}

/**
 * Slabs that follow one another in the file, written with one vectored write through `direct` when
 * every one is aligned (one system call and one job of the thread pool instead of one each); what
 * that leaves, or all of them where it cannot, slab by slab as writeSlab does.
 */
export async function writeSlabs(cached, direct, slabs) {
  if (slabs.length === 0) return;
  const at = slabs[0].at;
  let done = 0;
  if (direct && slabs.length > 1 && slabs.every((s) => isAligned(s.at, s.n))) {
    try {
      done = (await direct.writev(slabs.map((s) => (s.n === s.buf.length ? s.buf : s.buf.subarray(0, s.n))), at)).bytesWritten;
    } catch (e) {
      if (!refused(e)) throw e;
    }
  }
  for (const s of slabs) {
    const skip = Math.min(s.n, Math.max(0, at + done - s.at));
    if (skip < s.n) await writeSlab(cached, direct, { buf: s.buf.subarray(skip), n: s.n - skip, at: s.at + skip });
  }
}

export function writeSlabFd(cached, direct, slab) {
  return writeSlabAt(fdWrite(cached), direct === undefined ? undefined : fdWrite(direct), slab);
}

/** The page-aligned window around [pos, upTo) that a direct read of `buf` covers. */
function window(buf, pos, upTo) {
  const from = pos - (pos % DIRECT_IO_ALIGNMENT);
  return { from, length: Math.min(from + buf.length, upTo + toBoundary(upTo)) - from };
}

/** Where the bytes from `pos` are in a window read from `from` that got `got` bytes, and how many (up to `upTo`). */
const span = (from, got, pos, upTo) => ({ at: pos - from, n: Math.max(0, Math.min(got, upTo - from) - (pos - from)) });

export function readSpanSync(cached, direct, buf, pos, upTo, onRefused) {
  if (direct !== undefined) {
    const { from, length } = window(buf, pos, upTo);
    try {
      return span(from, readSync(direct, buf, 0, length, from), pos, upTo);
    } catch (e) {
      if (!refused(e)) throw e;
      onRefused();
    }
  }
  return { at: 0, n: readSync(cached, buf, 0, Math.min(buf.length, upTo - pos), pos) };
}

const readAt = (fd, buf, length, position) =>
  new Promise((resolve, reject) => read(fd, buf, 0, length, position, (e, n) => (e ? reject(e) : resolve(n))));

export async function readSpan(cached, direct, buf, pos, upTo, onRefused) {
  if (direct !== undefined) {
    const { from, length } = window(buf, pos, upTo);
    try {
      return span(from, await readAt(direct, buf, length, from), pos, upTo);
    } catch (e) {
      if (!refused(e)) throw e;
      onRefused();
    }
  }
  return { at: 0, n: await readAt(cached, buf, Math.min(buf.length, upTo - pos), pos) };
}
