/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
// Who signed a tag's manifest (docs/protocol.md, "Model signatures"): each account with the
// fingerprint of its key, or "unsigned" when no registered key of a publisher signed it.

export function SignedBy(props: { signers: Array<{ account: string; fingerprint: string }> }) {
  if (props.signers.length === 0) return <span class="signature unsigned">unsigned</span>;
  return (
    <span class="signature">
      {props.signers.map((s, i) => (
        <>
          {i > 0 ? "; " : ""}signed by {s.account} (key <code>{s.fingerprint}</code>)
        </>
      ))}
    </span>
  );
}
