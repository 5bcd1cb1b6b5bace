// Property-based tests of the parsers that turn untrusted text into paths and references: model
// names (path traversal through `..`, encoded slashes, NUL, absolute paths, backslashes, look-alike
// dots), digests, and manifests. A name either fails validation or yields four plain path segments;
// a digest either fails or is canonical; a manifest either fails with ManifestError or is sound.
// FUZZ_SEED=<n> replays a failure (fast-check prints the seed and path); FUZZ_RUNS=<n> scales it.

import assert from "node:assert/strict";
import { join, relative, sep } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { InvalidNameError, ModelName, parseModelName } from "@corral/shared/name";
import { InvalidDigestError, blobFileName, digestHex, isDigest, parseDigest, shortDigest } from "@corral/shared/digest";
import { MAX_MANIFEST_BYTES, ManifestError, encodeManifest, parseConfig, parseManifest } from "@corral/shared/manifest";

function runs(n: number): fc.Parameters<unknown> {
  const seed = process.env["FUZZ_SEED"];
  return { numRuns: Math.max(1, Math.round(Number(process.env["FUZZ_RUNS"] ?? 1) * n)), ...(seed ? { seed: Number(seed) } : {}) };
}

const ROOT = join(sep, "srv", "corral", "models", "manifests");

// Fragments of traversal and injection attempts, mixed with ordinary name characters.
const hostilePiece = fc.constantFrom(
  "..", ".", "/", "//", "../", "..\\", "\\", "%2f", "%2F", "..%2f", "%2e%2e", "%00", "\0", "\n", "\r", " ", "\t",
  ":", "::", "@", "?", "#", "~", "$HOME", "/etc/passwd", "C:\\", "http://", "https://", "file://",
  "\u2024", "\uff0e", "\u2215", "\u29f8", "\uff0f", "\u0000", "\ud800", "é", "İ", "K",
  "llama3", "library", "registry.ollama.ai", "latest", "a", "Z", "0", "_", "-", ".x", "x.",
);
const hostileName = fc.oneof(
  { weight: 3, arbitrary: fc.array(hostilePiece, { maxLength: 12 }).map((p) => p.join("")) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(..."./:\\%-_aZ0\0"), maxLength: 30 }) },
);

/** The checks a stored path segment must pass, whatever the name rules say. */
function assertPlainSegment(seg: string, what: string): void {
  assert.ok(seg.length > 0 && seg !== "." && seg !== "..", `${what} ${JSON.stringify(seg)} is empty or a dot segment`);
  assert.ok(!/[/\\\0]/.test(seg), `${what} ${JSON.stringify(seg)} contains a separator or NUL`);
  assert.ok(!seg.startsWith("."), `${what} ${JSON.stringify(seg)} is hidden (temporary files start with a dot)`);
  assert.ok(!/[\u0000-\u001f\u007f]/.test(seg), `${what} ${JSON.stringify(seg)} contains a control character`);
}

function assertInside(root: string, p: string): void {
  const rel = relative(root, p);
  assert.ok(rel !== "" && !rel.startsWith("..") && !rel.startsWith(sep), `${p} is not inside ${root}`);
}

describe("model names from hostile text", () => {
  it("either fail validation or give four plain segments inside the manifests directory", () => {
    let valid = 0;
    fc.assert(
      fc.property(hostileName, fc.constantFrom(undefined, "registry.test", "localhost:8080"), (input, host) => {
        const name = ModelName.parse(input, host);
        const problem = name.problem();
        assert.equal(problem === undefined, name.isValid());
        if (!name.isValid()) {
          assert.throws(() => name.manifestSegments());
          assert.throws(() => parseModelName(input, host), InvalidNameError);
          return;
        }
        valid++;
        const segs = name.manifestSegments();
        segs.forEach((s, i) => assertPlainSegment(s, ["host", "namespace", "model", "tag"][i]!));
        const path = join(ROOT, ...segs);
        assertInside(ROOT, path);
        // join() collapsed nothing: the path is exactly the segments.
        assert.equal(path, [ROOT, ...segs].join(sep));
        assert.equal(parseModelName(input, host).toString(), name.toString());
        // A valid name's printed form parses back to itself.
        assert.ok(ModelName.parse(name.toString()).equals(name));
      }),
      runs(4000),
    );
    assert.ok(valid > 0, "no generated name was valid; the generator misses the interesting half");
  });

  it("refuses the classic traversal spellings", () => {
    const attempts = [
      "../../../etc/passwd", "..", "../x", "x/../y", "ns/../x:latest", "registry/../..:latest", "/etc/passwd", "//host/ns/m",
      "ns/m:../../x", "ns/m:..", "ns/m:.hidden", "..%2f..%2fetc", "ns%2f..%2fm", "m\0x", "m:tag\0", "ns\\..\\m",
      "C:\\Windows\\system32", "h/ns/.", "h/./m:t", ".tmp-123", "ns/.tmp-abc:latest", "m\n", "m:t\n",
    ];
    for (const a of attempts) {
      const name = ModelName.parse(a);
      if (!name.isValid()) continue;
      // Some spellings are legal names (`..%2f..%2fetc` is not: '%' is refused); any that pass
      // must still be plain segments.
      name.manifestSegments().forEach((s) => assertPlainSegment(s, a));
    }
    for (const a of ["../../../etc/passwd", "..", "ns/m:..", "m\0x", "ns\\..\\m", ".tmp-123", "..%2f..%2fetc"]) {
      assert.throws(() => parseModelName(a), InvalidNameError, a);
    }
  });

  it("validates parts taken from directory listings the same way (fromParts)", () => {
    fc.assert(
      fc.property(hostileName, hostileName, hostileName, hostileName, (h, n, m, t) => {
        const name = ModelName.fromParts(h, n, m, t);
        if (!name.isValid()) {
          assert.throws(() => name.manifestSegments());
          return;
        }
        name.manifestSegments().forEach((s) => assertPlainSegment(s, "part"));
      }),
      runs(3000),
    );
  });
});

describe("digests from hostile text", () => {
  const hex64 = fc.stringMatching(/^[0-9a-fA-F]{64}$/);
  const digestLike = fc.oneof(
    hex64.map((h) => `sha256:${h}`),
    hex64.map((h) => `sha256-${h}`),
    fc.tuple(hex64, hostilePiece).map(([h, p]) => `sha256:${h}${p}`),
    fc.tuple(hostilePiece, hex64).map(([p, h]) => `${p}sha256:${h}`),
    fc.tuple(hex64, fc.constantFrom("sha512:", "SHA256:", "sha256::", "sha256", "md5:", "sha256:0x")).map(([h, a]) => `${a}${h}`),
    hex64.map((h) => `sha256:${h.slice(0, 63)}`),
    hex64.map((h) => `sha256:${h}0`),
    hostileName,
  );

  it("either throw InvalidDigestError or give a canonical digest and a plain blob file name", () => {
    fc.assert(
      fc.property(digestLike, (s) => {
        let canonical: string;
        try {
          canonical = parseDigest(s);
        } catch (e) {
          assert.ok(e instanceof InvalidDigestError, `parseDigest(${JSON.stringify(s)}) threw ${String(e)}`);
          assert.ok(!isDigest(s));
          assert.throws(() => blobFileName(s), InvalidDigestError);
          return;
        }
        assert.ok(isDigest(canonical), canonical);
        assert.equal(s.length, canonical.length);
        const file = blobFileName(s);
        assert.match(file, /^sha256-[0-9a-f]{64}$/);
        assertInside(ROOT, join(ROOT, file));
        assert.equal(digestHex(s).length, 64);
        assert.equal(shortDigest(s).length, 12);
        if (isDigest(s)) assert.equal(canonical, s);
      }),
      runs(4000),
    );
  });
});

describe("manifests from hostile bytes", () => {
  const digest = fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`), fc.constantFrom("", "sha256:", "sha256:../../x", "../../etc/passwd", `sha256-${"a".repeat(64)}`, `sha256:${"A".repeat(64)}`));
  const size = fc.oneof(fc.nat(), fc.constantFrom(-1, 1.5, 2 ** 53, Number.MAX_VALUE, "12", null, true));
  const descriptor = fc.oneof(
    { weight: 5, arbitrary: fc.record({ mediaType: fc.constantFrom("application/vnd.ollama.image.model", "", "x"), digest, size }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );
  const manifestish = fc.record(
    {
      schemaVersion: fc.constantFrom(2, 1, "2", null, 2.0000001),
      mediaType: fc.constantFrom("application/vnd.docker.distribution.manifest.v2+json", 5, ""),
      config: fc.oneof(descriptor, fc.constant(null)),
      layers: fc.oneof({ weight: 5, arbitrary: fc.array(descriptor, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }),
      __proto__: fc.jsonValue({ maxDepth: 1 }),
    },
    { requiredKeys: [] },
  );
  const text = fc.oneof(
    { weight: 4, arbitrary: manifestish.map((m) => JSON.stringify(m)) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 80 }) },
    { weight: 1, arbitrary: fc.nat({ max: 5000 }).map((n) => "[".repeat(n) + "]".repeat(n)) },
  );

  it("either throw ManifestError or hold only valid digests and sizes, and re-encode losslessly", () => {
    let accepted = 0;
    fc.assert(
      fc.property(text, fc.boolean(), (t, asBytes) => {
        let m;
        try {
          m = parseManifest(asBytes ? Buffer.from(t, "utf8") : t);
        } catch (e) {
          assert.ok(e instanceof ManifestError, `parseManifest threw ${String(e)}`);
          return;
        }
        accepted++;
        for (const d of [...m.layers, ...(m.config.digest ? [m.config] : [])]) {
          assert.ok(isDigest(d.digest), d.digest);
          assert.ok(Number.isSafeInteger(d.size) && d.size >= 0);
        }
        // Without a config the encoding keeps an empty config descriptor, which parsing refuses;
        // the daemon only encodes manifests it built, which always have one.
        if (m.config.digest) assert.deepEqual(parseManifest(encodeManifest(m)), m);
      }),
      runs(3000),
    );
    assert.ok(accepted > 0, "no generated manifest was valid");
  });

  it("refuses oversized manifests before parsing them", () => {
    const big = `{"schemaVersion":2,"layers":[],"pad":"${"x".repeat(MAX_MANIFEST_BYTES)}"}`;
    assert.throws(() => parseManifest(big), ManifestError);
    assert.throws(() => parseManifest(Buffer.from(big)), ManifestError);
  });

  it("reads any config blob without throwing anything but ManifestError", () => {
    fc.assert(
      fc.property(fc.oneof(fc.json({ maxDepth: 3 }), fc.string({ maxLength: 40 })), (t) => {
        try {
          const c = parseConfig(t);
          assert.equal(typeof c.model_format, "string");
        } catch (e) {
          assert.ok(e instanceof ManifestError, String(e));
        }
      }),
      runs(1500),
    );
  });
});
