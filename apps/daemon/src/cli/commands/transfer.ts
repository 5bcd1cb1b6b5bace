// `corral pull` and `corral push` (docs/daemon.md, "CLI").
import { ModelName, OLLAMA_REGISTRY_HOST } from "@corral/shared/name";
import { Client } from "../client.ts";
import { CLIError } from "../errors.ts";
import { qualify } from "../short-names.ts";
import { Progress, PULL_PROGRESS, renderNDJSONProgress } from "../render/progress.ts";

export async function pullCommand(model: string, opts: { insecure?: boolean }): Promise<void> {
  const client = new Client();
  await client.heartbeat();
  const progress = new Progress();
  try {
    await renderNDJSONProgress(client.stream("/api/pull", { model: qualify(model), insecure: opts.insecure === true }), progress, PULL_PROGRESS);
  } finally {
    progress.stop();
  }
}

export async function pushCommand(model: string, opts: { insecure?: boolean }): Promise<void> {
  const name = ModelName.parse(model);
  if (!name.isValid()) throw new CLIError(`invalid model name "${model}": ${name.problem()}`);
  const client = new Client();
  await client.heartbeat();
  const progress = new Progress();
  try {
    await renderNDJSONProgress(client.stream("/api/push", { model: qualify(model), insecure: opts.insecure === true }), progress);
  } finally {
    progress.stop();
  }
  const dest = name.host.toLowerCase() === OLLAMA_REGISTRY_HOST ? name.shortest() : name.toString();
  process.stdout.write(`\nYou can find your model at:\n\n\t${dest}\n`);
}
