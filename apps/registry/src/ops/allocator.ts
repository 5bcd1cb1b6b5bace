// How the C allocator under Node keeps the memory that uploads pass through. Node's HTTP parser
// copies every piece of a request body it reads (up to 64 KB) into a new buffer from malloc, and
// those buffers are freed in batches, when a garbage collection finds them dead. glibc gives the
// top of its heap back to the kernel as soon as more than its trim threshold (128 KB by default)
// lies free there, so after some collections the next few hundred megabytes of an upload land in
// pages new to the process again: 100,000-150,000 page faults for a 1 GB push instead of about
// 12,000, 1.5 CPU-seconds more and pushes of 3.5-4 s instead of 2.2 s, in a third of the pushes
// on a 2-core virtual machine (docs/architecture.md, "Data flow: a push, on the registry").
//
// glibc raises that threshold by itself, to twice the size of the largest block it had mapped on
// its own and then freed (up to 32 MB), because a program that frees such blocks will want the
// memory again. Node offers no mallopt(), and GLIBC_TUNABLES is read only when a process starts
// (an operator's setting there turns this adjustment off, and wins), so `serve` lets glibc see one
// such block: a buffer of that size, allocated and dropped unwritten (its pages are never mapped),
// which the first young collection frees, long before an upload's buffers pile up. Other C
// libraries are not affected.

/** The largest block glibc's threshold follows (its DEFAULT_MMAP_THRESHOLD_MAX is 32 MiB on 64-bit), less room for its header. */
const BLOCK = (32 << 20) - (1 << 20);

/** Keeps up to about 62 MB of freed heap in the process instead of handing it back after every collection. */
export function keepFreedUploadMemory(): void {
  // Never written, so its pages are never mapped; freed by the next young collection.
  Buffer.allocUnsafeSlow(BLOCK);
}
