/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
// The front page: a search box and the recently updated models; with ?q= the search results.

import type { ModelSummary } from "../../services/catalog.ts";
import { ModelList } from "../components.tsx";
import { Layout, SearchForm, type PageContext } from "../layout.tsx";

export function HomePage(props: { ctx: PageContext; models: ModelSummary[] }) {
  return (
    <Layout ctx={props.ctx} title="Corral · models" hideHeaderSearch description="The models this team shares through its Corral registry.">
      <section class="hero">
        <h1>Your team's models</h1>
        <p>Browse, search and pull the models shared through this registry.</p>
        <SearchForm id="q" big />
      </section>
      <section aria-labelledby="recent">
        <div class="section-head">
          <h2 id="recent">Recently updated</h2>
        </div>
        <ModelList
          models={props.models}
          empty={props.ctx.viewer ? "No models yet. Push one with corral push." : "No public models yet. Sign in to see your team's private ones."}
        />
      </section>
    </Layout>
  );
}

export function SearchPage(props: { ctx: PageContext; query: string; models: ModelSummary[] }) {
  const n = props.models.length;
  return (
    <Layout ctx={props.ctx} title={`${props.query} · search · Corral`} query={props.query}>
      <div class="section-head">
        <h1>
          Models matching “{props.query}”
        </h1>
        <span class="count" role="status">
          {n === 1 ? "1 model" : `${n} models`}
        </span>
      </div>
      <ModelList models={props.models} empty={props.ctx.viewer ? "No model matches. Try fewer or shorter words." : "No public model matches. Signed-in members also see private models."} />
    </Layout>
  );
}
