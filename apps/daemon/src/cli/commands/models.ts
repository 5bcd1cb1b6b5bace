// `corral list`, `show`, `cp`, `rm` (docs/daemon.md, "CLI").
import { ModelName } from "@corral/shared/name";
import { humanBytes, humanTime } from "@corral/shared/format";
import { Client } from "../client.ts";
import { CLIError } from "../errors.ts";
import { qualify } from "../short-names.ts";
import { renderSection, renderTable } from "../render/table.ts";

interface TagsResponse {
  models: Array<{ name: string; size: number; digest: string; modified_at: string; remote_model?: string }>;
}

export async function listCommand(prefix?: string): Promise<void> {
  const client = new Client();
  await client.heartbeat();
  const { models } = await client.request<TagsResponse>("GET", "/api/tags");
  const rows = models
    .filter((m) => !prefix || m.name.toLowerCase().startsWith(prefix.toLowerCase()))
    .map((m) => [m.name, m.digest.slice(0, 12), m.remote_model ? "-" : humanBytes(m.size), humanTime(new Date(m.modified_at))]);
  process.stdout.write(renderTable(["NAME", "ID", "SIZE", "MODIFIED"], rows));
}

export interface ShowResponse {
  license?: string;
  modelfile: string;
  parameters?: string;
  template?: string;
  system?: string;
  details: { family: string; parameter_size: string; quantization_level: string; context_length?: number; embedding_length?: number };
  model_info: Record<string, unknown>;
  projector_info?: Record<string, unknown>;
  tensors?: Array<{ name: string; type: string; shape: number[] }>;
  capabilities?: string[];
  requires?: string;
  messages?: Array<{ role: string; content: string }>;
  signatures?: Array<{ account: string; fingerprint: string; name: string }>;
}

const SHOW_FLAGS = ["license", "modelfile", "parameters", "system", "template"] as const;
type ShowFlag = (typeof SHOW_FLAGS)[number];

function firstLines(text: string, n: number): string[][] {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const rows = lines.slice(0, n).map((l) => [l]);
  if (lines.length > n) rows.push(["..."]);
  return rows;
}

export async function showCommand(model: string, opts: Partial<Record<ShowFlag | "verbose", boolean>>): Promise<void> {
  const chosen = SHOW_FLAGS.filter((f) => opts[f]);
  if (chosen.length > 1) throw new CLIError("only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified");
  const client = new Client();
  await client.heartbeat();
  const r = await client.request<ShowResponse>("POST", "/api/show", { model: qualify(model), verbose: opts.verbose === true });
  const flag = chosen[0];
  if (flag) {
    const value = r[flag] ?? "";
    process.stdout.write(flag === "system" || flag === "template" ? value : value + "\n");
    return;
  }
  const info = r.model_info;
  const arch = String(info["general.architecture"] ?? r.details.family);
  const modelRows: string[][] = [
    ["architecture", arch],
    ["parameters", r.details.parameter_size],
  ];
  if (r.details.context_length) modelRows.push(["context length", String(r.details.context_length)]);
  if (r.details.embedding_length) modelRows.push(["embedding length", String(r.details.embedding_length)]);
  modelRows.push(["quantization", r.details.quantization_level]);
  if (r.requires) modelRows.push(["requires", r.requires]);
  let out = renderSection("Model", modelRows);
  if (r.capabilities?.length) out += renderSection("Capabilities", r.capabilities.map((c) => [c]));
  if (r.projector_info) {
    const p = r.projector_info;
    const parch = String(p["general.architecture"] ?? "");
    out += renderSection("Projector", [
      ["architecture", parch],
      ["parameters", String(p["general.parameter_count"] ?? "")],
    ]);
  }
  if (r.parameters) {
    out += renderSection(
      "Parameters",
      r.parameters.split("\n").map((l) => {
        const m = /^(\S+)\s+(.*)$/.exec(l);
        return m ? [m[1]!, m[2]!] : [l];
      }),
    );
  }
  if (opts.verbose) {
    const keys = Object.keys(info).sort();
    out += renderSection("Metadata", keys.map((k) => [k, formatMeta(info[k])]));
    if (r.tensors) out += renderSection("Tensors", r.tensors.map((t) => [t.name, t.type, `[${t.shape.join(" ")}]`]));
  }
  if (r.signatures?.length) out += renderSection("Signature", r.signatures.map((sig) => [`Signed by ${sig.account} (key ${sig.fingerprint})`]));
  if (r.system) out += renderSection("System", firstLines(r.system, 2));
  if (r.license) out += renderSection("License", firstLines(r.license, 2));
  process.stdout.write(out);
}

function formatMeta(v: unknown): string {
  if (Array.isArray(v)) {
    if (v.length > 5) return `[${v.slice(0, 3).join(" ")} ...+${v.length - 3} more]`;
    return `[${v.join(" ")}]`;
  }
  return String(v);
}

export async function copyCommand(source: string, destination: string): Promise<void> {
  const client = new Client();
  await client.heartbeat();
  await client.request("POST", "/api/copy", { source: qualify(source), destination: qualify(destination) });
  process.stdout.write(`copied '${source}' to '${destination}'\n`);
}

export async function removeCommand(models: string[]): Promise<void> {
  const client = new Client();
  await client.heartbeat();
  for (const m of models) {
    if (!ModelName.parse(m).isValid()) throw new CLIError(`name "${m}" is invalid`);
    await client.request("DELETE", "/api/delete", { model: qualify(m) });
    process.stdout.write(`deleted '${m}'\n`);
  }
}
