/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
// Signing in without a password: how to get a link, and the confirmation a link leads to.

import { CommandBox } from "../components.tsx";
import { Layout, type PageContext } from "../layout.tsx";

export function SignInHelpPage(props: { ctx: PageContext; error?: string }) {
  const { ctx } = props;
  const command = `corral login ${ctx.insecure ? `http://${ctx.host}` : ctx.host}`;
  return (
    <Layout ctx={ctx} title="Sign in · Corral">
      <div class="narrow panel">
        <h1>Sign in</h1>
        {props.error ? (
          <p class="notice error" role="alert">
            {props.error}
          </p>
        ) : null}
        <p>This registry has no passwords: you sign in with the key your Corral daemon already uses to push and pull.</p>
        <ol>
          <li>On a machine whose key is registered here, run:</li>
        </ol>
        <div class="pullbox">
          <CommandBox id="login-command" command={command} label="Login command" />
        </div>
        <ol start={2}>
          <li>Open the link it prints in this browser within ten minutes. Each link works once.</li>
        </ol>
        <p class="hint">
          No account yet? Ask an administrator to register the output of <code>corral key</code>.
        </p>
      </div>
    </Layout>
  );
}

export function ConfirmSignInPage(props: { ctx: PageContext; token: string; account: string; keyFingerprint: string }) {
  return (
    <Layout ctx={props.ctx} title="Confirm sign in · Corral">
      <div class="narrow panel">
        <h1>Sign in as {props.account}?</h1>
        <p>
          This link was requested by <code>corral login</code> with the key <code>{props.keyFingerprint}</code>.
        </p>
        <form method="post" action={`/-/login/${props.token}`}>
          <button class="btn primary" type="submit">
            Sign in as {props.account}
          </button>
        </form>
        <p class="hint">If you did not run corral login just now, close this page.</p>
      </div>
    </Layout>
  );
}

export function MessagePage(props: { ctx: PageContext; title: string; message: string }) {
  return (
    <Layout ctx={props.ctx} title={`${props.title} · Corral`}>
      <div class="narrow panel">
        <h1>{props.title}</h1>
        <p>{props.message}</p>
        <p>
          <a class="btn" href="/">
            Back to all models
          </a>
        </p>
      </div>
    </Layout>
  );
}
