/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
// A user's or organisation's models; members see who else belongs, owners of organisations manage them.

import type { NamespaceView } from "../../services/catalog.ts";
import { ModelList } from "../components.tsx";
import { Layout, type PageContext } from "../layout.tsx";
import { Notice } from "./model.tsx";

export function NamespacePage(props: { ctx: PageContext; view: NamespaceView; notice?: string | undefined; error?: string | undefined }) {
  const { ctx, view } = props;
  const a = view.account;
  const isOrg = a.kind === "org";
  const manage = isOrg && view.role === "owner" && ctx.viewer !== undefined;
  const n = view.models.length;
  return (
    <Layout ctx={ctx} title={`${a.name} · Corral`}>
      <Notice notice={props.notice} error={props.error} />
      <div class="profile">
        <div class={isOrg ? "avatar org" : "avatar"} aria-hidden="true">
          {a.name.charAt(0).toUpperCase()}
        </div>
        <div>
          <h1>{a.name}</h1>
          <ul class="chips">
            <li class="chip kind">{isOrg ? "Organisation" : "User"}</li>
            {view.role ? <li class="chip arch">{ctx.viewer?.name === a.name ? "you" : `your role: ${view.role}`}</li> : null}
          </ul>
        </div>
      </div>
      <section class="block" aria-labelledby="models-title">
        <div class="section-head">
          <h2 id="models-title">Models</h2>
          <span class="count">{n === 1 ? "1 model" : `${n} models`}</span>
        </div>
        <ModelList models={view.models} showNamespace={false} empty={view.role ? `Nothing in ${a.name} yet.` : `No public models in ${a.name}.`} />
      </section>
      {view.members ? (
        <section class="block" aria-labelledby="members-title">
          <h2 id="members-title">{isOrg ? "Members" : "Shared with"}</h2>
          {view.members.length === 0 ? (
            <p class="empty">Nobody else has a role here.</p>
          ) : (
            <div class="table-wrap">
              <table class="list">
                <thead>
                  <tr>
                    <th scope="col">Account</th>
                    <th scope="col">Role</th>
                    {manage ? <th scope="col">Manage</th> : null}
                  </tr>
                </thead>
                <tbody>
                  {view.members.map((m) => (
                    <tr>
                      <td>
                        <a href={`/${m.name}`}>{m.name}</a>
                      </td>
                      <td>{m.role}</td>
                      {manage ? (
                        <td>
                          <form class="inline-form" method="post" action={`/-/orgs/${a.name}/members`}>
                            <input type="hidden" name="_csrf" value={ctx.viewer!.csrfToken} />
                            <input type="hidden" name="user" value={m.name} />
                            <label class="sr" for={`role-${m.name}`}>
                              Role of {m.name}
                            </label>
                            <select id={`role-${m.name}`} name="role">
                              {(["reader", "writer", "owner"] as const).map((r) => (
                                <option value={r} selected={r === m.role}>
                                  {r}
                                </option>
                              ))}
                            </select>
                            <button class="btn small" type="submit" name="action" value="set">
                              Change
                            </button>
                            <button class="btn small danger" type="submit" name="action" value="remove">
                              Remove
                            </button>
                          </form>
                        </td>
                      ) : null}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {manage ? (
            <details class="manage">
              <summary>Add a member</summary>
              <div class="body">
                <form method="post" action={`/-/orgs/${a.name}/members`}>
                  <input type="hidden" name="_csrf" value={ctx.viewer!.csrfToken} />
                  <input type="hidden" name="action" value="set" />
                  <label class="field" for="new-member">
                    <span>User name</span>
                    <input id="new-member" type="text" name="user" required maxlength={80} autocomplete="off" />
                    <small>The user must already have an account on this registry.</small>
                  </label>
                  <label class="field" for="new-role">
                    <span>Role</span>
                    <select id="new-role" name="role">
                      <option value="reader">reader: pull</option>
                      <option value="writer">writer: pull and push</option>
                      <option value="owner">owner: everything, and managing members</option>
                    </select>
                  </label>
                  <button class="btn primary" type="submit">
                    Add member
                  </button>
                </form>
              </div>
            </details>
          ) : null}
        </section>
      ) : null}
    </Layout>
  );
}
