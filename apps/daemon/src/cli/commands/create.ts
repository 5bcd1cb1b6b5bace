// `corral create NAME [-f Modelfile] [-q TYPE]` (docs/daemon.md, "Create"): parse the Modelfile locally, upload the
// files it names through /api/blobs, then stream /api/create's progress.
import { stat } from "node:fs/promises";
import { ModelName } from "@corral/shared/name";
import { sha256File } from "@corral/shared/digest";
import { Client } from "../client.ts";
import { CLIError } from "../errors.ts";
import { qualify } from "../short-names.ts";
import { modelfileToRequest, readModelfile, transportNames } from "../modelfile-request.ts";
import { Progress, renderNDJSONProgress } from "../render/progress.ts";

export async function createCommand(model: string, opts: { file?: string; quantize?: string }): Promise<void> {
  const name = ModelName.parse(model);
  const problem = name.problem();
  if (problem) throw new CLIError(`invalid model name "${model}": ${problem}`);
  const client = new Client();
  await client.heartbeat();

  const progress = new Progress();
  try {
    const gathering = progress.spinner("gathering model components");
    const mf = await readModelfile(opts.file);
    const local = await modelfileToRequest(mf.path, mf.text, mf.dir);
    gathering.stop();
    for (const w of local.warnings) process.stderr.write(w + "\n");

    const upload = async (paths: string[]): Promise<Record<string, string>> => {
      const names = transportNames(paths);
      const out: Record<string, string> = {};
      for (const p of paths) {
        const size = (await stat(p)).size;
        const spin = progress.spinner(`copying file ${names.get(p)} 0%`);
        let done = 0;
        const { digest } = await sha256File(p, (n) => {
          done += n;
          spin.setText(`copying file ${names.get(p)} ${Math.floor((done / Math.max(size, 1)) * 50)}%`);
        });
        if (!(await client.hasBlob(digest))) {
          let sent = 0;
          await client.uploadBlob(digest, p, (n) => {
            sent += n;
            spin.setText(`copying file ${digest} ${50 + Math.floor((sent / Math.max(size, 1)) * 50)}%`);
          });
        }
        spin.setText(`copying file ${digest} 100%`);
        spin.stop();
        out[names.get(p)!] = digest;
      }
      return out;
    };

    const body: Record<string, unknown> = { model: qualify(model) };
    if (local.from !== undefined) body["from"] = local.from;
    if (local.files.length) body["files"] = await upload(local.files);
    if (local.adapters.length) body["adapters"] = await upload(local.adapters);
    if (local.draftFiles.length) body["draft_files"] = await upload(local.draftFiles);
    if (local.template !== undefined) body["template"] = local.template;
    if (local.system !== undefined) body["system"] = local.system;
    for (const k of ["renderer", "parser", "requires"] as const) if (local[k] !== undefined) body[k] = local[k];
    if (local.license) body["license"] = local.license;
    if (local.parameters) body["parameters"] = local.parameters;
    if (local.messages) body["messages"] = local.messages;
    if (opts.quantize) body["quantize"] = opts.quantize;

    await renderNDJSONProgress(client.stream("/api/create", body), progress);
  } finally {
    progress.stop();
  }
}
