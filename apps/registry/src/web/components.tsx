/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
// Pieces several catalog pages share: model lists, the pull command with its copy button, times.

import { humanBytes, humanNumber, humanTime } from "@corral/shared/format";
import type { ModelSummary } from "../services/catalog.ts";
import { ClockIcon, CopyIcon, DownloadIcon, TagIcon, type PageContext } from "./layout.tsx";
import { summary } from "./markdown.ts";

/** "2 hours ago", "about a minute ago" (lower case, to sit inside a sentence). */
export function ago(date: Date, now = new Date()): string {
  const text = humanTime(date, now);
  return text.charAt(0).toLowerCase() + text.slice(1);
}

export function TimeAgo(props: { date: Date; prefix?: string }) {
  const iso = props.date.toISOString();
  return (
    <time datetime={iso} title={iso.replace("T", " ").replace(/\.\d+Z$/, " UTC")}>
      {props.prefix ?? ""}
      {ago(props.date)}
    </time>
  );
}

export const params = (n: number): string => humanNumber(n);
export const bytes = (n: number): string => humanBytes(n);

export function pullCommand(ctx: PageContext, ns: string, model: string, tag: string): string {
  return `corral pull ${ctx.host}/${ns}/${model}:${tag}${ctx.insecure ? " --insecure" : ""}`;
}

/** `corral run` pulls a model it does not have first, so this is the one command to try it. */
export function runCommand(ctx: PageContext, ns: string, model: string, tag: string): string {
  return `corral run ${ctx.host}/${ns}/${model}:${tag}${ctx.insecure ? " --insecure" : ""}`;
}

/** The pull and run commands of a tag, each with its copy button. */
export function Commands(props: { ctx: PageContext; ns: string; model: string; tag: string }) {
  const { ctx, ns, model, tag } = props;
  const what = `${ns}/${model}:${tag}`;
  return (
    <div class="pullbox commands">
      <CommandBox id="pull-command" command={pullCommand(ctx, ns, model, tag)} label={`Pull command for ${what}`} />
      <CommandBox id="run-command" command={runCommand(ctx, ns, model, tag)} label={`Run command for ${what}`} />
    </div>
  );
}

/** "1 pull", "12.3K pulls". */
export function pullsText(n: number): string {
  return n === 1 ? "1 pull" : `${humanNumber(n)} pulls`;
}

/** Capability badges, in SHOWN_CAPABILITIES order. */
export function Badges(props: { capabilities: string[] }) {
  if (props.capabilities.length === 0) return null;
  return (
    <ul class="chips badges" aria-label="Capabilities">
      {props.capabilities.map((c) => (
        <li class={`chip cap cap-${c}`} data-capability={c}>
          {c}
        </li>
      ))}
    </ul>
  );
}

/** A command in a box; the copy button is revealed by copy.js, the text is selectable without it. */
export function CommandBox(props: { id: string; command: string; label: string }) {
  return (
    <div class="cmd">
      <span class="prompt" aria-hidden="true">
        $
      </span>
      <code id={props.id} aria-label={props.label}>
        {props.command}
      </code>
      <button class="btn small" type="button" data-copy={props.id} hidden aria-label={`Copy: ${props.label}`}>
        <CopyIcon />
        <span class="label">Copy</span>
      </button>
      <span class="sr" role="status"></span>
    </div>
  );
}

/** "Mirrored from registry.ollama.ai · refreshed 5 minutes ago" (docs/protocol.md, "Mirrors"). */
export function MirrorOrigin(props: { origin: { host: string; refreshedAt: Date } }) {
  return (
    <span data-fact="mirror">
      Mirrored from {props.origin.host} · <TimeAgo date={props.origin.refreshedAt} prefix="refreshed " />
    </span>
  );
}

export function ShortDigest(props: { digest: string }) {
  return <code title={props.digest}>{props.digest.replace(/^sha256:/, "").slice(0, 12)}</code>;
}

export function ModelList(props: { models: ModelSummary[]; showNamespace?: boolean; empty: string }) {
  if (props.models.length === 0) return <p class="empty">{props.empty}</p>;
  return (
    <ul class="models">
      {props.models.map((m) => {
        const text = summary(m.description);
        const caps = m.card?.capabilities ?? [];
        return (
          <li>
            <h3>
              <a href={`/${m.namespace}/${m.name}`}>
                {props.showNamespace === false ? null : <span class="ns">{m.namespace}/</span>}
                {m.name}
              </a>
              {m.visibility === "private" ? <span class="chip private">private</span> : null}
            </h3>
            {text ? <p class="desc">{text}</p> : null}
            {caps.length || m.architectures.length || m.parameterCounts.length ? (
              <ul class="chips" aria-label="Capabilities and model facts">
                {caps.map((c) => (
                  <li class={`chip cap cap-${c}`} data-capability={c}>
                    {c}
                  </li>
                ))}
                {m.architectures.map((a) => (
                  <li class="chip arch">{a}</li>
                ))}
                {m.parameterCounts.map((n) => (
                  <li class="chip" data-parameters={n === m.card?.parameterCount ? "default" : undefined} title={`${n.toLocaleString("en-US")} parameters`}>
                    {params(n)}
                  </li>
                ))}
              </ul>
            ) : null}
            {m.card && m.card.size !== null ? (
              <p class="card-facts" data-card-tag={m.card.tag}>
                <span class="sub">{m.card.tag}</span> · <span data-card="size">{bytes(m.card.size)}</span>
                {m.card.quantization ? (
                  <>
                    {" · "}
                    <span data-card="quantization">{m.card.quantization}</span>
                  </>
                ) : null}
              </p>
            ) : null}
            <ul class="meta">
              <li data-card="pulls">
                <DownloadIcon />
                {pullsText(m.pulls)}
              </li>
              <li>
                <TagIcon />
                {m.tagCount === 1 ? "1 tag" : `${m.tagCount} tags`}
              </li>
              {m.mirror ? (
                <li data-card="mirror">
                  <MirrorOrigin origin={m.mirror} />
                </li>
              ) : null}
              {m.updatedAt ? (
                <li>
                  <ClockIcon />
                  <TimeAgo date={m.updatedAt} prefix="Updated " />
                </li>
              ) : (
                <li>Nothing pushed yet</li>
              )}
            </ul>
          </li>
        );
      })}
    </ul>
  );
}
