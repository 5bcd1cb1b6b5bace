// REGISTRY_MIRRORS, REGISTRY_MIRROR_TTL, _MISS_TTL, _LOOKUP_RATE and _VISIBILITY as the registry reads them:
// pairs separated by commas or white space, one clear line per mistake, and a password in an
// upstream URL never repeated in a message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadConfig, mirrorOf, parseMirrors } from "../src/config.ts";
import { parseAuthChallenge } from "@corral/shared/challenge";

test("mirrors parse from commas or white space, with credentials kept apart from the URL", () => {
  const m = parseMirrors("library=https://registry.ollama.ai, Team=http://bob:p%40ss@10.0.0.2:5000\n hub=https://registry-1.docker.io/");
  assert.deepEqual(
    m.map((x) => [x.namespace, x.upstream, x.host, x.credentials]),
    [
      ["library", "https://registry.ollama.ai", "registry.ollama.ai", undefined],
      ["team", "http://10.0.0.2:5000", "10.0.0.2:5000", { username: "bob", password: "p@ss" }],
      ["hub", "https://registry-1.docker.io", "registry-1.docker.io", undefined],
    ],
  );
  assert.deepEqual(parseMirrors(undefined), []);
  assert.deepEqual(parseMirrors("  "), []);
  const config = loadConfig({ REGISTRY_MIRRORS: "library=https://registry.ollama.ai" });
  assert.equal(config.mirrorTTLSeconds, 3600);
  assert.equal(config.mirrorMissTTLSeconds, 60);
  assert.equal(config.mirrorLookupRatePerMinute, 60);
  assert.equal(config.mirrorVisibility, "public");
  assert.equal(mirrorOf(config, "library")?.host, "registry.ollama.ai");
  assert.equal(mirrorOf(config, "alice"), undefined);
});

test("each mistake is one line naming the variable and the pair, never the password", () => {
  const cases: Array<[string, RegExp]> = [
    ["library", /^REGISTRY_MIRRORS: expected namespace=https:\/\/upstream, got "library"$/],
    ["=https://x.example", /^REGISTRY_MIRRORS: expected namespace=https:\/\/upstream/],
    ["Bad_Name!=https://x.example", /^REGISTRY_MIRRORS: "bad_name!" cannot be a namespace: /],
    ["library=registry.ollama.ai", /^REGISTRY_MIRRORS: the upstream of library is not a URL; expected library=https:\/\/host\[:port\]$/],
    ["library=ftp://u:hunter2@x.example", /^REGISTRY_MIRRORS: the upstream of library must be http:\/\/ or https:\/\/, not ftp:$/],
    ["library=https://u:hunter2@x.example/v2/library", /^REGISTRY_MIRRORS: the upstream of library must be just scheme:\/\/host\[:port\] .* not x\.example\/v2\/library$/],
    ["library=https://a.example library=https://b.example", /^REGISTRY_MIRRORS: library is named twice$/],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => parseMirrors(raw), (e: Error) => {
      assert.match(e.message, message);
      assert.doesNotMatch(e.message, /hunter2/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    }, raw);
  }
  assert.throws(() => loadConfig({ REGISTRY_MIRROR_TTL: "soon" }), /^Error: REGISTRY_MIRROR_TTL: expected a non-negative number of seconds, got "soon"$/);
  assert.throws(() => loadConfig({ REGISTRY_MIRROR_MISS_TTL: "-1" }), /^Error: REGISTRY_MIRROR_MISS_TTL: expected a non-negative number of seconds, got "-1"$/);
  // A rate is a count a minute, not seconds.
  assert.throws(() => loadConfig({ REGISTRY_TOKEN_RATE: "fast" }), /^Error: REGISTRY_TOKEN_RATE: expected a whole number \(0 for no limit\), got "fast"$/);
  assert.throws(() => loadConfig({ REGISTRY_MIRROR_LOOKUP_RATE: "lots" }), /^Error: REGISTRY_MIRROR_LOOKUP_RATE: expected a whole number \(0 for no limit\), got "lots"$/);
  assert.throws(() => loadConfig({ REGISTRY_MIRROR_VISIBILITY: "secret" }), /^Error: REGISTRY_MIRROR_VISIBILITY: expected public or private, got "secret"$/);
});

test("challenges of upstreams: scheme and parameters, quoted or bare", () => {
  assert.deepEqual(parseAuthChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull"'), {
    scheme: "bearer",
    params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/x:pull" },
  });
  assert.deepEqual(parseAuthChallenge('Basic realm="Registry Realm"'), { scheme: "basic", params: { realm: "Registry Realm" } });
  assert.deepEqual(parseAuthChallenge("bearer realm=https://r.example/token,service=r"), { scheme: "bearer", params: { realm: "https://r.example/token", service: "r" } });
});
