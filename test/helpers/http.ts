// Small pieces for the HTTP servers tests write themselves (hostile registries, endless bodies).
import type { ServerResponse } from "node:http";

/** Waits until a response that refused a write can take more, or has closed. */
export function writable(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
