// The URLs the registry accepts signed requests for, and names in its answers: REGISTRY_URL and
// REGISTRY_EXTRA_URLS when set, else the names of the address it listens on.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { hostname, networkInterfaces } from "node:os";
import { loadConfig } from "../src/config.ts";
import { acceptedURLFor, publicURLs, serviceHost } from "../src/http/public-urls.ts";

const config = (env: Record<string, string>) => loadConfig({ REGISTRY_DATA: "/nonexistent", ...env });

describe("REGISTRY_URL and REGISTRY_EXTRA_URLS", () => {
  test("with REGISTRY_URL, only it and the extra URLs are accepted; the audience is its host", () => {
    const urls = publicURLs(config({ REGISTRY_ADDR: "127.0.0.1:5005", REGISTRY_URL: "https://registry.example.com/", REGISTRY_EXTRA_URLS: " http://registry.lan:5005/ ,https://registry.example.com," }));
    assert.deepEqual(urls, { primary: "https://registry.example.com", accepted: ["https://registry.example.com", "http://registry.lan:5005"] });
    assert.equal(serviceHost(urls), "registry.example.com");
    assert.equal(acceptedURLFor(urls, "127.0.0.1:5005"), undefined, "the listen address is not accepted once REGISTRY_URL names the registry");
    assert.equal(acceptedURLFor(urls, "localhost:5005"), undefined);
    assert.equal(acceptedURLFor(urls, "REGISTRY.example.com:443"), "https://registry.example.com");
    assert.equal(acceptedURLFor(urls, "registry.lan:5005"), "http://registry.lan:5005");
    assert.equal(acceptedURLFor(urls, "registry.lan"), undefined, "another port is another server");
    for (const odd of ["registry.example.com/x", "user@registry.example.com", "registry.example.com evil", "", undefined]) {
      assert.equal(acceptedURLFor(urls, odd), undefined, String(odd));
    }
  });

  test("a malformed REGISTRY_EXTRA_URLS entry is refused naming the variable", () => {
    assert.throws(() => config({ REGISTRY_EXTRA_URLS: "http://ok.example, registry lan" }), /^Error: REGISTRY_EXTRA_URLS: not a URL: "registry lan"; expected http:\/\/host\[:port\] or https:\/\/host\[:port\]$/);
    assert.throws(() => config({ REGISTRY_EXTRA_URLS: "ftp://registry.lan" }), /^Error: REGISTRY_EXTRA_URLS: expected http:\/\/ or https:\/\/, got ftp:$/);
    assert.deepEqual(config({ REGISTRY_EXTRA_URLS: " , " }).extraURLs, []);
  });
});

describe("without REGISTRY_URL: the names of the listen address", () => {
  test("a loopback bind: its address first, then localhost, 127.0.0.1 and [::1] at that port", () => {
    const urls = publicURLs(config({ REGISTRY_ADDR: "127.0.0.1:5005" }));
    assert.deepEqual(urls.accepted, ["http://127.0.0.1:5005", "http://localhost:5005", "http://[::1]:5005"]);
    assert.equal(serviceHost(urls), "127.0.0.1:5005");
    assert.equal(acceptedURLFor(urls, "localhost:5005"), "http://localhost:5005");
    assert.equal(acceptedURLFor(urls, "[::1]:5005"), "http://[::1]:5005");
    assert.equal(acceptedURLFor(urls, "evil.example:5005"), undefined);
  });

  test("the port comes from where the server listens (REGISTRY_ADDR may say 0); extra URLs follow", () => {
    const urls = publicURLs(config({ REGISTRY_ADDR: "[::1]:0", REGISTRY_EXTRA_URLS: "http://alias.example" }), { address: "::1", port: 40123 });
    assert.deepEqual(urls.accepted, ["http://[::1]:40123", "http://localhost:40123", "http://127.0.0.1:40123", "http://alias.example"]);
  });

  test("a name in REGISTRY_ADDR stays the primary; the address it resolved to is accepted too", () => {
    const urls = publicURLs(config({ REGISTRY_ADDR: "localhost:5005" }), { address: "127.0.0.1", port: 5005 });
    assert.deepEqual(urls.accepted, ["http://localhost:5005", "http://127.0.0.1:5005", "http://[::1]:5005"]);
  });

  test("a wildcard bind: also this machine's interface addresses and host name", () => {
    const urls = publicURLs(config({ REGISTRY_ADDR: "0.0.0.0:5005" }), { address: "0.0.0.0", port: 5005 });
    assert.equal(urls.primary, "http://0.0.0.0:5005");
    for (const u of ["http://localhost:5005", "http://127.0.0.1:5005", "http://[::1]:5005", new URL(`http://${hostname()}:5005`).origin]) assert.ok(urls.accepted.includes(u), u);
    for (const i of Object.values(networkInterfaces()).flat()) {
      if (!i || (i.family === "IPv6" && i.address.startsWith("fe80"))) continue;
      const host = i.family === "IPv6" ? `[${i.address}]:5005` : `${i.address}:5005`;
      assert.ok(acceptedURLFor(urls, host), host);
    }
    assert.equal(acceptedURLFor(urls, "evil.example:5005"), undefined);
  });
});
