/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
// One tag: its pull command, facts, layers with digests, and the full Modelfile.

import type { Descriptor } from "@corral/shared/manifest";
import { tagBadges, type ModelView, type TagContents, type TagView } from "../../services/catalog.ts";
import { Badges, bytes, Commands, pullsText, TimeAgo } from "../components.tsx";
import { DownloadIcon, Layout, type PageContext } from "../layout.tsx";
import { Facts, Layers, LastPush } from "./model.tsx";
import { SignedBy } from "../signed-by.tsx";

/** The manifest's blobs, each digest once with how often the manifest names it. */
function blobList(tag: TagView): Array<{ layer: Descriptor; count: number }> {
  const byDigest = new Map<string, { layer: Descriptor; count: number }>();
  for (const l of tag.manifest ? [...tag.manifest.layers, ...(tag.manifest.config.digest ? [tag.manifest.config] : [])] : []) {
    const seen = byDigest.get(l.digest);
    if (seen) seen.count++;
    else byDigest.set(l.digest, { layer: l, count: 1 });
  }
  return [...byDigest.values()];
}

export function TagPage(props: { ctx: PageContext; view: ModelView; tag: TagView; contents: TagContents | undefined; modelfile: string | undefined }) {
  const { ctx, view, tag } = props;
  const ns = view.namespace.name;
  const name = view.repository.name;
  return (
    <Layout ctx={ctx} title={`${ns}/${name}:${tag.name} · Corral`}>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href={`/${ns}`}>{ns}</a> / <a href={`/${ns}/${name}`}>{name}</a> / {tag.name}
      </nav>
      <div class="title">
        <h1>
          {name}:{tag.name}
        </h1>
        {view.repository.visibility === "private" ? <span class="chip private">private</span> : null}
      </div>
      <Badges capabilities={tagBadges(tag, props.contents)} />
      <Commands ctx={ctx} ns={ns} model={name} tag={tag.name} />
      <ul class="meta">
        <li data-fact="pulls">
          <DownloadIcon />
          {pullsText(view.pulls.byTag.get(tag.name) ?? 0)}
        </li>
        <li>
          <TimeAgo date={tag.updatedAt} prefix="Updated " />
        </li>
        <li>
          manifest <code>{tag.digest}</code>
        </li>
        <li>
          <SignedBy signers={tag.signedBy} />
        </li>
      </ul>
      <LastPush view={view} />
      <Facts tag={tag} />
      {props.contents ? (
        <section class="card" aria-labelledby="layers-title">
          <header>
            <h2 id="layers-title">Layers</h2>
            <span class="digest">{bytes(tag.size)}</span>
          </header>
          <Layers view={view} tag={tag} contents={props.contents} />
        </section>
      ) : null}
      {tag.manifest ? (
        <section class="block" aria-labelledby="digests-title">
          <h2 id="digests-title">Blobs</h2>
          <div class="table-wrap">
            <table class="list">
              <thead>
                <tr>
                  <th scope="col">Media type</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Size</th>
                </tr>
              </thead>
              <tbody>
                {blobList(tag).map(({ layer: l, count }) => (
                  <tr>
                    <td>
                      {l.mediaType.replace(/^application\/vnd\.(ollama\.image\.|docker\.container\.image\.v1\+json$)/, (m, p) => (p === "ollama.image." ? "" : "config "))}
                      {count > 1 ? <span class="sub"> ×{count}</span> : null}
                    </td>
                    <td>
                      <code>{l.digest}</code>
                    </td>
                    <td class="num">{bytes(l.size)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ) : null}
      {props.modelfile !== undefined ? (
        <section class="block" aria-labelledby="modelfile-title">
          <h2 id="modelfile-title">Modelfile</h2>
          <p class="hint">Build on this model: save as a Modelfile, edit, then run <code>corral create</code>.</p>
          <pre class="block modelfile" id="modelfile">
            {props.modelfile}
          </pre>
          <button class="btn small" type="button" data-copy="modelfile" hidden aria-label="Copy the Modelfile">
            <span class="label">Copy</span>
          </button>
          <span class="sr" role="status"></span>
        </section>
      ) : null}
    </Layout>
  );
}
