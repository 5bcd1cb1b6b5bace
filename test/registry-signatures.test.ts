// A hostile registry relays what a user's daemon signs for it to the team's registry. The user pulls
// from the hostile registry H; H challenges with a realm on its own host and a scope in the user's
// namespace, the daemon signs that token request (correctly, for H's URL) and sends it to H, and H
// forwards it to the team registry, with its own Host or with the registry's. `corral login H` is
// relayed the same way. The registry, with REGISTRY_URL set and with the embedded default (no
// REGISTRY_URL), refuses every relay and still serves requests signed for its own URLs.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { EMPTY_BODY_HASH, encodeQuery, formatPublicKeyLine, generateKeyPair, newNonce, parsePrivateKey, signedAuthorization, tokenRequestChallenge, tokenRequestURL, type KeyPair } from "@corral/shared/signing";
import { startDaemon, runCLI, type Daemon } from "./helpers/daemon.ts";
import { startRegistry, registryCLI, type RegistryProcess } from "./helpers/registry.ts";

interface Reply {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

/** One HTTP request to `r` over its loopback socket, with the Host header given (a client's name for it). */
function send(r: Pick<RegistryProcess, "host">, method: string, pathAndQuery: string, headers: Record<string, string>): Promise<Reply> {
  const [hostname, port] = r.host.split(":");
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port: Number(port), method, path: pathAndQuery, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

const messageOf = (reply: Reply): string => {
  try {
    return (JSON.parse(reply.body) as { errors?: Array<{ message?: string }> }).errors?.[0]?.message ?? reply.body;
  } catch {
    return reply.body;
  }
};

interface Relayed extends Reply {
  method: string;
  path: string;
}

/** The attacker: a registry that challenges for the user's namespace and relays what it is sent. */
interface Hostile {
  host: string;
  target: RegistryProcess;
  /** Which Host the relay uses: its own (as received), or the team registry's. */
  forwardHost: "own" | "target";
  relayed: Relayed[];
  stop(): Promise<void>;
}

async function startHostile(target: RegistryProcess): Promise<Hostile> {
  const hostile: Hostile = { host: "", target, forwardHost: "own", relayed: [], stop: async () => {} };
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "/";
    if (path.startsWith("/v2/token") || path.startsWith("/-/login/links")) {
      const host = hostile.forwardHost === "own" ? (req.headers.host ?? hostile.host) : hostile.target.host;
      const headers: Record<string, string> = { Host: host };
      if (req.headers.authorization) headers["Authorization"] = req.headers.authorization;
      req.resume();
      send(hostile.target, req.method ?? "GET", path, headers).then(
        (reply) => {
          hostile.relayed.push({ ...reply, method: req.method ?? "GET", path });
          res.writeHead(reply.status, { "Content-Type": "application/json" }).end(reply.body);
        },
        (e: Error) => res.writeHead(502).end(e.message),
      );
      return;
    }
    // Every other request needs a token, for the scope the attacker wants.
    req.resume();
    res
      .writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${hostile.host}/v2/token",service="${hostile.host}",scope="repository:alice/secret:pull,push"`, "Content-Type": "application/json" })
      .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  hostile.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  hostile.stop = () => new Promise((resolve) => server.close(() => resolve()));
  return hostile;
}

let withURL: RegistryProcess;
let embedded: RegistryProcess;
let victim: Daemon;
let victimKey: KeyPair;
const carol = generateKeyPair("carol@signatures");

before(async () => {
  // One after another, so that `after` stops whatever started when a later start fails.
  withURL = await startRegistry();
  embedded = await startRegistry({ REGISTRY_URL: "" });
  victim = await startDaemon();
  victimKey = parsePrivateKey(await readFile(join(victim.home, ".corral", "id_ed25519"), "utf8"));
  for (const r of [withURL, embedded]) {
    for (const args of [
      ["user", "add", "alice", "--key", formatPublicKeyLine(victimKey.publicKey, "alice")],
      ["user", "add", "carol", "--key", formatPublicKeyLine(carol.publicKey, "carol")],
    ]) {
      const done = await registryCLI(r, args);
      assert.equal(done.code, 0, `${args.join(" ")}: ${done.stderr}`);
    }
  }
});

after(async () => {
  await victim?.stop();
  await withURL?.stop();
  await embedded?.stop();
});

for (const which of ["REGISTRY_URL set", "no REGISTRY_URL (embedded default)"] as const) {
  describe(`a registry with ${which}`, () => {
    const registry = (): RegistryProcess => (which === "REGISTRY_URL set" ? withURL : embedded);

    test("refuses the daemon's token request relayed by a hostile registry with its own Host, and the nonce stays unused", async () => {
      const r = registry();
      const hostile = await startHostile(r);
      try {
        const pull = await runCLI(victim, ["pull", `${hostile.host}/alice/secret:latest`, "--insecure"]);
        assert.notEqual(pull.code, 0, "nothing to pull from the hostile registry");
        const relayed = hostile.relayed.find((x) => x.path.startsWith("/v2/token"));
        assert.ok(relayed, `the daemon sent its signed token request to the hostile registry: ${pull.stderr}`);
        assert.equal(relayed.status, 401, `the relay got: ${relayed.body}`);
        assert.equal(
          messageOf(relayed),
          `signed requests are accepted only for this registry's URL${which === "REGISTRY_URL set" ? "" : "s"} ${expectedURLs(r)} (this one came for host ${hostile.host}); if clients reach the registry under that name, add it to REGISTRY_EXTRA_URLS`,
        );
        // The same nonce, in a request the user's key signs for the registry itself, is still good.
        const query = new URL(relayed.path, "http://x").searchParams;
        const own = tokenRequestURL({ realm: `${r.url}/v2/token`, service: r.host, scope: "repository:alice/secret:pull", ts: Number(query.get("ts")), nonce: query.get("nonce")! });
        const genuine = await send(r, "GET", own.slice(r.url.length), { Host: r.host, Authorization: signedAuthorization(victimKey, tokenRequestChallenge(own)) });
        assert.equal(genuine.status, 200, genuine.body);
      } finally {
        await hostile.stop();
      }
    });

    test("refuses the relayed token request sent with the registry's own Host: it was signed for another URL", async () => {
      const r = registry();
      const hostile = await startHostile(r);
      hostile.forwardHost = "target";
      try {
        await runCLI(victim, ["pull", `${hostile.host}/alice/secret:latest`, "--insecure"]);
        const relayed = hostile.relayed.find((x) => x.path.startsWith("/v2/token"));
        assert.ok(relayed);
        assert.deepEqual([relayed.status, messageOf(relayed)], [401, "the signature does not match this request"]);
      } finally {
        await hostile.stop();
      }
    });

    test("refuses `corral login` of the hostile registry relayed to it: no catalog sign-in", async () => {
      const r = registry();
      const hostile = await startHostile(r);
      try {
        const login = await runCLI(victim, ["login", hostile.host, "--insecure"]);
        assert.notEqual(login.code, 0, `no link: ${login.stdout}`);
        const relayed = hostile.relayed.find((x) => x.path.startsWith("/-/login/links"));
        assert.ok(relayed, login.stderr);
        assert.equal(relayed.status, 401, `the relay got: ${relayed.body}`);
        assert.match(messageOf(relayed), /^signed requests are accepted only for this registry's URL/);
        const own = await runCLI(victim, ["login", r.host, "--insecure"]);
        assert.equal(own.code, 0, own.stderr);
        assert.match(own.stdout, new RegExp(`^http://${r.host.replaceAll(".", "\\.")}/-/login/`));
      } finally {
        await hostile.stop();
      }
    });
  });
}

/** What each registry names in its refusal: its configured URL, or the loopback names it listens under. */
function expectedURLs(r: RegistryProcess): string {
  if (r === withURL) return r.url;
  const port = r.host.split(":")[1];
  return [`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`].join(", ");
}

describe("the embedded default (REGISTRY_ADDR 127.0.0.1:<port>, no REGISTRY_URL)", () => {
  const signedToken = (base: string, host: string): Promise<Reply> => {
    const url = tokenRequestURL({ realm: `${base}/v2/token`, service: host, scope: "repository:carol/m:pull,push", ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
    return send(embedded, "GET", url.slice(base.length), { Host: host, Authorization: signedAuthorization(carol, tokenRequestChallenge(url)) });
  };

  test("accepts requests signed for 127.0.0.1:<port> and localhost:<port>, and challenges each client on the name it used", async () => {
    const port = embedded.host.split(":")[1]!;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const issued = await signedToken(`http://${host}`, host);
      assert.equal(issued.status, 200, `${host}: ${issued.body}`);
      const token = (JSON.parse(issued.body) as { token: string }).token;
      const upload = await send(embedded, "POST", "/v2/carol/m/blobs/uploads/", { Host: host, Authorization: `Bearer ${token}` });
      assert.equal(upload.status, 202, upload.body);
      assert.match(String(upload.headers["location"]), new RegExp(`^http://${host.replaceAll(".", "\\.")}/v2/carol/m/blobs/uploads/`));
      const challenged = await send(embedded, "GET", "/v2/carol/m/manifests/latest", { Host: host });
      assert.equal(challenged.headers["www-authenticate"], `Bearer realm="http://${host}/v2/token",service="127.0.0.1:${port}",scope="repository:carol/m:pull"`);
    }
    const login = `http://localhost:${port}/-/login/links?${encodeQuery([
      ["nonce", newNonce()],
      ["ts", String(Math.floor(Date.now() / 1000))],
    ])}`;
    const link = await send(embedded, "POST", login.slice(`http://localhost:${port}`.length), { Host: `localhost:${port}`, Authorization: signedAuthorization(carol, `POST,${login},${EMPTY_BODY_HASH}`) });
    assert.equal(link.status, 201, link.body);
    assert.match((JSON.parse(link.body) as { url: string }).url, new RegExp(`^http://localhost:${port}/-/login/`));
  });

  test("its start-up line names the URLs it accepts signed requests for", () => {
    const port = embedded.host.split(":")[1]!;
    assert.match(embedded.logs(), new RegExp(`listening on http://127\\.0\\.0\\.1:${port} \\(database: pglite, blobs: filesystem\\); URL http://127\\.0\\.0\\.1:${port}, also http://localhost:${port}, http://\\[::1\\]:${port}`));
  });
});
