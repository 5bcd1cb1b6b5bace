// The thread side of upload-hash.ts: running sha256 states by handle. {op: "update", h, bytes,
// ack?} adds bytes (and answers {ack} once they are hashed, so that a buffer shared with the main
// thread can be reused); {op: "digest", h, ack} answers {ack, digest} and forgets the state;
// {op: "drop", h} forgets it. Messages are handled in the order they were posted, which is the
// order of the bytes.
import { parentPort } from "node:worker_threads";
import { createHash } from "node:crypto";

const states = new Map();

parentPort.on("message", (m) => {
  if (m.op === "update") {
    let h = states.get(m.h);
    if (!h) states.set(m.h, (h = createHash("sha256")));
    h.update(m.bytes);
    if (m.ack !== undefined) parentPort.postMessage({ ack: m.ack });
  } else if (m.op === "digest") {
    const h = states.get(m.h) ?? createHash("sha256");
    states.delete(m.h);
    parentPort.postMessage({ ack: m.ack, digest: `sha256:${h.digest("hex")}` });
  } else if (m.op === "drop") {
    states.delete(m.h);
  }
});
