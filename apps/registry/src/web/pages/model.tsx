/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
// A model: what it is (from its GGUF header), how to pull it, its tags, its layers and its readme;
// owners edit the description and visibility here.

import { tagBadges, type LayerText, type ModelView, type TagContents, type TagView } from "../../services/catalog.ts";
import { Badges, bytes, Commands, MirrorOrigin, params, pullsText, ShortDigest, TimeAgo } from "../components.tsx";
import { ClockIcon, DownloadIcon, KeyIcon, Layout, TagIcon, type PageContext } from "../layout.tsx";
import { leadAndRest, summary } from "../markdown.ts";
import { SignedBy } from "../signed-by.tsx";

export function Notice(props: { notice?: string | undefined; error?: string | undefined }) {
  if (props.error) return <p class="notice error" role="alert">{props.error}</p>;
  if (props.notice) return <p class="notice" role="status">{props.notice}</p>;
  return null;
}

export function Facts(props: { tag: TagView }) {
  const f = props.tag.model?.facts;
  const unknown = props.tag.model ? (props.tag.model.error ? "unreadable" : "—") : "no model layer";
  return (
    <dl class="facts" aria-label={`Facts about tag ${props.tag.name}`}>
      <div>
        <dt>Architecture</dt>
        <dd data-fact="architecture">{f ? f.architecture : unknown}</dd>
      </div>
      <div>
        <dt>Parameters</dt>
        <dd data-fact="parameters" title={f ? f.parameterCount.toLocaleString("en-US") : undefined}>
          {f ? params(f.parameterCount) : "—"}
        </dd>
      </div>
      <div>
        <dt>Quantization</dt>
        <dd data-fact="quantization">{f ? f.quantization : "—"}</dd>
      </div>
      <div>
        <dt>Context length</dt>
        <dd data-fact="context-length">{f?.contextLength ? f.contextLength.toLocaleString("en-US") : "—"}</dd>
      </div>
      <div>
        <dt>Size</dt>
        <dd data-fact="size">{bytes(props.tag.size)}</dd>
      </div>
    </dl>
  );
}

/** Where a layer's whole blob can be read: the registry API serves it to anyone who may pull a public model. */
function WholeLayer(props: { view: ModelView; digest: string }) {
  const { view } = props;
  if (view.repository.visibility !== "public") return <>Pull the model to read all of it.</>;
  return <a href={`/v2/${view.namespace.name}/${view.repository.name}/blobs/${props.digest}`}>Download the whole layer.</a>;
}

function TextRow(props: { view: ModelView; name: string; layer: LayerText | null }) {
  const layer = props.layer;
  if (!layer) return null;
  return (
    <tr>
      <th scope="row">{props.name}</th>
      <td>
        {layer.withheld ? (
          <span class="sub">
            not shown here: this page already shows all the text it can. <WholeLayer view={props.view} digest={layer.digest} />
          </span>
        ) : layer.text === null ? (
          <span class="sub">could not be read</span>
        ) : layer.text.trim() === "" && !layer.truncated ? (
          <span class="sub">empty</span>
        ) : (
          <>
            <pre class="block">{layer.text + (layer.truncated ? "\n…" : "")}</pre>
            {layer.truncated ? (
              <p class="sub">
                Showing the first {bytes(layer.shownBytes)} of {bytes(layer.size)}. <WholeLayer view={props.view} digest={layer.digest} />
              </p>
            ) : null}
          </>
        )}
      </td>
      <td class="size">{bytes(layer.size)}</td>
    </tr>
  );
}

/** Licences past the page's text budget, in one row: the tag page lists each by digest. */
function WithheldLicenses(props: { view: ModelView; tag: TagView; layers: LayerText[] }) {
  const { view, tag, layers } = props;
  if (layers.length === 0) return null;
  if (layers.length === 1) return <TextRow view={view} name="license" layer={layers[0]!} />;
  const total = layers.reduce((n, l) => n + l.size, 0);
  return (
    <tr>
      <th scope="row">license</th>
      <td>
        <span class="sub">
          {layers.length} more licences ({bytes(total)}) not shown here: this page already shows all the text it can.{" "}
          <a href={`/${view.namespace.name}/${view.repository.name}/tags/${tag.name}#digests-title`}>Their digests</a>
        </span>
      </td>
      <td class="size">{bytes(total)}</td>
    </tr>
  );
}

/** The layers of one tag, like ollama.com's model box. */
export function Layers(props: { view: ModelView; tag: TagView; contents: TagContents }) {
  const { view, tag, contents } = props;
  const f = tag.model?.facts;
  return (
    <table class="layers">
      <tbody>
        {tag.model ? (
          <tr>
            <th scope="row">model</th>
            <td>
              {f ? (
                <span>
                  arch <strong>{f.architecture}</strong> · parameters <strong>{params(f.parameterCount)}</strong> · quantization <strong>{f.quantization}</strong>
                </span>
              ) : (
                <span class="sub">{tag.model.error ? `not a readable GGUF file: ${tag.model.error}` : "GGUF header not read yet"}</span>
              )}
              <div class="sub">
                <ShortDigest digest={tag.model.digest} />
              </div>
            </td>
            <td class="size">{bytes(tag.model.size)}</td>
          </tr>
        ) : null}
        {contents.projectors.map((p) => (
          <BlobRow kind="projector" blob={p} />
        ))}
        {contents.adapters.map((p) => (
          <BlobRow kind="adapter" blob={p} />
        ))}
        <TextRow view={view} name="params" layer={contents.params} />
        <TextRow view={view} name="template" layer={contents.template} />
        <TextRow view={view} name="system" layer={contents.system} />
        {contents.messages ? <TextRow view={view} name="messages" layer={contents.messages} /> : null}
        {contents.licenses
          .filter((l) => !l.withheld)
          .map((l) => (
            <TextRow view={view} name="license" layer={l} />
          ))}
        <WithheldLicenses view={view} tag={tag} layers={contents.licenses.filter((l) => l.withheld)} />
      </tbody>
    </table>
  );
}

export function LastPush(props: { view: ModelView }) {
  const p = props.view.lastPush;
  const mirror = props.view.mirror;
  if (!p && !mirror) return null;
  return (
    <ul class="meta" aria-label="Last push">
      {mirror ? (
        <li>
          <ClockIcon />
          <MirrorOrigin origin={mirror} />
        </li>
      ) : null}
      {p ? <PushFacts push={p} /> : null}
    </ul>
  );
}

function PushFacts(props: { push: NonNullable<ModelView["lastPush"]> }) {
  const p = props.push;
  return (
    <>
      <li>
        <ClockIcon />
        <span>
          Last pushed <TimeAgo date={p.pushedAt} />
          {p.account ? (
            <>
              {" "}by <a href={`/${p.account}`}>{p.account}</a>
            </>
          ) : null}
          {p.tag ? ` (${p.tag})` : ""}
        </span>
      </li>
      {p.keyFingerprint ? (
        <li>
          <KeyIcon />
          <span>
            key <code data-fact="push-key">{p.keyFingerprint}</code>
          </span>
        </li>
      ) : null}
    </>
  );
}

export function ModelPage(props: {
  ctx: PageContext;
  view: ModelView;
  tag: TagView | undefined;
  contents: TagContents | undefined;
  notice?: string | undefined;
  error?: string | undefined;
}) {
  const { ctx, view, tag, contents } = props;
  const ns = view.namespace.name;
  const name = view.repository.name;
  const canEdit = view.role === "owner" && ctx.viewer !== undefined;
  const lead = summary(view.repository.description);
  const described = leadAndRest(view.repository.description);
  return (
    <Layout ctx={ctx} title={`${ns}/${name} · Corral`} description={lead || `${ns}/${name} on ${ctx.host}`}>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href={`/${ns}`}>{ns}</a> / {name}
      </nav>
      <Notice notice={props.notice} error={props.error} />
      <div class="title">
        <h1>{name}</h1>
        {view.repository.visibility === "private" ? <span class="chip private">private</span> : <span class="chip">public</span>}
      </div>
      {described.lead ? <div class="lead" dangerouslySetInnerHTML={{ __html: described.lead }} /> : null}
      {tag ? (
        <>
          <Badges capabilities={tagBadges(tag, contents)} />
          <Commands ctx={ctx} ns={ns} model={name} tag={tag.name} />
          <ul class="meta">
            <li data-fact="pulls" title={`${view.pulls.total.toLocaleString("en-US")} pulls of all tags`}>
              <DownloadIcon />
              {pullsText(view.pulls.total)}
            </li>
            <li>
              <TagIcon />
              <a href="#tags">{view.tags.length === 1 ? "1 tag" : `${view.tags.length} tags`}</a>
            </li>
            <li>
              <ClockIcon />
              <TimeAgo date={tag.updatedAt} prefix="Updated " />
            </li>
          </ul>
          <LastPush view={view} />
          <Facts tag={tag} />
          <section class="card" aria-labelledby="layers-title">
            <header>
              <h2 id="layers-title">
                <a href={`/${ns}/${name}/tags/${tag.name}`}>
                  {name}:{tag.name}
                </a>
              </h2>
              <span class="digest">
                <ShortDigest digest={tag.digest} /> · {bytes(tag.size)}
              </span>
            </header>
            {contents ? <Layers view={view} tag={tag} contents={contents} /> : <div class="body">{tag.manifestError ?? ""}</div>}
          </section>
          <TagTable ctx={ctx} view={view} />
        </>
      ) : (
        <p class="empty">Nothing has been pushed to {ns}/{name} yet.</p>
      )}
      {described.rest.trim() ? (
        <section class="block" aria-labelledby="readme-title">
          <h2 id="readme-title">Readme</h2>
          <div class="readme" dangerouslySetInnerHTML={{ __html: described.rest }} />
        </section>
      ) : described.lead ? null : (
        <section class="block" aria-labelledby="readme-title">
          <h2 id="readme-title">Readme</h2>
          <p class="empty">{canEdit ? "No description yet: add one under “Edit model”." : "No description yet."}</p>
        </section>
      )}
      {canEdit ? <EditModel ctx={ctx} view={view} /> : null}
    </Layout>
  );
}

/** A layer that is shown by its digest and size only. */
function BlobRow(props: { kind: string; blob: { digest: string; size: number } }) {
  return (
    <tr>
      <th scope="row">{props.kind}</th>
      <td>
        <ShortDigest digest={props.blob.digest} />
      </td>
      <td class="size">{bytes(props.blob.size)}</td>
    </tr>
  );
}

function TagTable(props: { ctx: PageContext; view: ModelView }) {
  const { view } = props;
  const base = `/${view.namespace.name}/${view.repository.name}`;
  return (
    <section class="block" aria-labelledby="tags">
      <h2 id="tags">Tags</h2>
      <div class="table-wrap">
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Tag</th>
              <th scope="col">Digest</th>
              <th scope="col">Signature</th>
              <th scope="col">Size</th>
              <th scope="col">Parameters</th>
              <th scope="col">Quantization</th>
              <th scope="col">Architecture</th>
              <th scope="col">Context</th>
              <th scope="col">Pulls</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {view.tags.map((t) => {
              const f = t.model?.facts;
              return (
                <tr>
                  <td>
                    <a href={`${base}/tags/${t.name}`}>{t.name}</a>
                  </td>
                  <td>
                    <ShortDigest digest={t.digest} />
                  </td>
                  <td>
                    <SignedBy signers={t.signedBy} />
                  </td>
                  <td class="num">{bytes(t.size)}</td>
                  <td class="num">{f ? params(f.parameterCount) : "—"}</td>
                  <td>{f ? f.quantization : "—"}</td>
                  <td>{f ? f.architecture : "—"}</td>
                  <td class="num">{f?.contextLength ? f.contextLength.toLocaleString("en-US") : "—"}</td>
                  <td class="num" data-tag-pulls={t.name}>
                    {(view.pulls.byTag.get(t.name) ?? 0).toLocaleString("en-US")}
                  </td>
                  <td>
                    <TimeAgo date={t.updatedAt} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function EditModel(props: { ctx: PageContext; view: ModelView }) {
  const { view } = props;
  const vis = view.repository.visibility;
  return (
    <details class="manage">
      <summary>Edit model</summary>
      <div class="body">
        <form method="post" action={`/-/models/${view.namespace.name}/${view.repository.name}`}>
          <input type="hidden" name="_csrf" value={props.ctx.viewer?.csrfToken ?? ""} />
          <label class="field" for="description">
            <span>Description</span>
            <textarea id="description" name="description" aria-describedby="description-hint" maxlength={65536}>
              {view.repository.description}
            </textarea>
            <small id="description-hint">Markdown. The first paragraph is shown in lists and search results; HTML is shown as text.</small>
          </label>
          <fieldset>
            <legend>Visibility</legend>
            <div class="radios">
              <label>
                <input type="radio" name="visibility" value="public" checked={vis === "public"} /> Public: anyone who can reach this registry
              </label>
              <label>
                <input type="radio" name="visibility" value="private" checked={vis === "private"} /> Private: members of {view.namespace.name} only
              </label>
            </div>
          </fieldset>
          <button class="btn primary" type="submit">
            Save changes
          </button>
        </form>
      </div>
    </details>
  );
}
