/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
// Pieces several catalog pages share: model lists, the pull command with its copy button, times.

import { humanBytes, humanNumber, humanTime } from "@corral/shared/format";
import type { ModelSummary } from "../services/catalog.ts";
import { ClockIcon, CopyIcon, TagIcon, type PageContext } from "./layout.tsx";
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

export function ShortDigest(props: { digest: string }) {
  return <code title={props.digest}>{props.digest.replace(/^sha256:/, "").slice(0, 12)}</code>;
}

export function ModelList(props: { models: ModelSummary[]; showNamespace?: boolean; empty: string }) {
  if (props.models.length === 0) return <p class="empty">{props.empty}</p>;
  return (
    <ul class="models">
      {props.models.map((m) => {
        const text = summary(m.description);
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
            {m.architectures.length || m.parameterCounts.length ? (
              <ul class="chips" aria-label="Model facts">
                {m.architectures.map((a) => (
                  <li class="chip arch">{a}</li>
                ))}
                {m.parameterCounts.map((n) => (
                  <li class="chip">{params(n)}</li>
                ))}
              </ul>
            ) : null}
            <ul class="meta">
              <li>
                <TagIcon />
                {m.tagCount === 1 ? "1 tag" : `${m.tagCount} tags`}
              </li>
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
