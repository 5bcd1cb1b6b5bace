import { test } from "node:test";
import assert from "node:assert/strict";
import { renderSection, renderTable, wrapEvenly, displayWidth } from "../src/cli/render/table.ts";
import {
  Progress,
  PULL_PROGRESS,
  formatBarLine,
  pullBarLabel,
  renderNDJSONProgress,
  type ProgressStream,
  type ProgressUpdate,
} from "../src/cli/render/progress.ts";

test("renderTable: the `ollama list` layout", () => {
  const out = renderTable(
    ["NAME", "ID", "SIZE", "MODIFIED"],
    [
      ["llama3.2:latest", "a80c4f17acd5", "2.0 GB", "2 months ago"],
      ["alice/mario:latest", "4f1b2c3d4e5f", "2.0 GB", "5 seconds ago"],
    ],
  );
  assert.equal(
    out,
    "NAME                  ID              SIZE      MODIFIED\n" +
      "llama3.2:latest       a80c4f17acd5    2.0 GB    2 months ago\n" +
      "alice/mario:latest    4f1b2c3d4e5f    2.0 GB    5 seconds ago\n",
  );
});

test("renderTable: the `ollama ps` layout, and a header-only table", () => {
  assert.equal(
    renderTable(
      ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"],
      [["llama3.2:latest", "a80c4f17acd5", "3.3 GB", "100% GPU", "4096", "4 minutes from now"]],
    ),
    "NAME               ID              SIZE      PROCESSOR    CONTEXT    UNTIL\n" +
      "llama3.2:latest    a80c4f17acd5    3.3 GB    100% GPU     4096       4 minutes from now\n",
  );
  assert.equal(renderTable(["NAME", "ID", "SIZE", "MODIFIED"], []), "NAME    ID    SIZE    MODIFIED\n");
});

test("renderSection: `ollama show` sections concatenate with a blank line after each", () => {
  const out =
    renderSection("Model", [
      ["architecture", "llama"],
      ["parameters", "8.0B"],
      ["context length", "131072"],
      ["embedding length", "4096"],
      ["quantization", "Q4_K_M"],
    ]) +
    renderSection("Capabilities", [["completion"], ["tools"]]) +
    renderSection("Parameters", [
      ["stop", '"<|eot_id|>"'],
      ["temperature", "0.6"],
    ]);
  assert.equal(
    out,
    [
      "  Model",
      "    architecture        llama",
      "    parameters          8.0B",
      "    context length      131072",
      "    embedding length    4096",
      "    quantization        Q4_K_M",
      "",
      "  Capabilities",
      "    completion",
      "    tools",
      "",
      "  Parameters",
      '    stop           "<|eot_id|>"',
      "    temperature    0.6",
      "",
      "",
    ].join("\n"),
  );
});

test("renderSection wraps cells over 30 columns, and over 100 in System/License", () => {
  const long = "the quick brown fox jumps over the lazy dog again";
  assert.equal(
    renderSection("Metadata", [["general.description", long]]),
    "  Metadata\n" +
      "    general.description    the quick brown fox jumps over\n" +
      "                           the lazy dog again\n\n",
  );
  assert.equal(renderSection("License", [[long]]), `  License\n    ${long}\n\n`);
});

test("wrapEvenly balances lines instead of filling greedily", () => {
  // Greedy filling at 6 gives "aaa bb" / "cc" / "ddddd" (slack 0² + 4²); even breaks cost 3² + 1².
  assert.deepEqual(wrapEvenly(["aaa", "bb", "cc", "ddddd"], 6), ["aaa", "bb cc", "ddddd"]);
  // The last line's slack is free.
  assert.deepEqual(wrapEvenly(["aaa", "bb", "cc", "ddddd"], 10), ["aaa bb cc", "ddddd"]);
  // A word wider than the limit stays whole and becomes the limit.
  assert.deepEqual(wrapEvenly(["sha256:0123456789abcdef", "x"], 8), ["sha256:0123456789abcdef", "x"]);
  assert.deepEqual(wrapEvenly(["sha256:0123456789abcdef", "x", "y"], 8), ["sha256:0123456789abcdef", "x y"]);
  assert.equal(displayWidth("模型ab"), 6);
  // An emoji sequence, a flag and a skin tone are one character of two columns each.
  assert.equal(displayWidth("\u{1F468}\u200D\u{1F469}\u200D\u{1F467} \u{1F1EB}\u{1F1F7} \u{1F44D}\u{1F3FD}"), 8);
});

test("formatBarLine: a running transfer at 80 columns", () => {
  const line = formatBarLine(
    { label: "pulling 2af3b81862c6:", completed: 550_000_000, total: 1_100_000_000, rate: 12_400_000, finished: false },
    80,
  );
  assert.equal(line, `pulling 2af3b81862c6:  50% ▕${"█".repeat(9)}${" ".repeat(9)}▏ 550 MB/1.1 GB   12 MB/s     44s`);
  assert.equal([...line].length, 79);
});

test("formatBarLine: a finished transfer keeps only the total, columns aligned", () => {
  const line = formatBarLine({ label: "pulling 2af3b81862c6:", completed: 1_100_000_000, total: 1_100_000_000, rate: 0, finished: true }, 80);
  assert.equal(line, `pulling 2af3b81862c6: 100% ▕${"█".repeat(18)}▏ 1.1 GB${" ".repeat(25)}`);
});

test("formatBarLine: no rate yet, long ETA, and a terminal too narrow for the bar", () => {
  assert.equal(
    formatBarLine({ label: "pushing 2af3b81862c6", completed: 0, total: 4_700_000_000, rate: 0, finished: false }, 60),
    `pushing 2af3b81862c6   0% ▕▏    0 B/4.7 GB${" ".repeat(18)}`,
  );
  const slow = formatBarLine({ label: "x", completed: 1_000_000, total: 4_000_000_000, rate: 10_000, finished: false }, 80);
  assert.match(slow, /10 KB\/s {4}99h\+$/);
  const narrow = formatBarLine({ label: "a very long label that does not fit", completed: 5, total: 10, rate: 1, finished: false }, 40);
  assert.match(narrow, /^a very long label that does not fit  50% ▕▏ /);
});

test("pullBarLabel keeps the first 12 hex digits", () => {
  assert.equal(pullBarLabel("sha256:2af3b81862c6be03c769683af18efdadb2c33f60ff32ab6f83e42c043d6c7816"), "pulling 2af3b81862c6:");
});

/** A non-terminal stream that keeps what is written. */
function capture(): ProgressStream & { text: string } {
  const sink = { text: "", isTTY: false, write: (s: string) => ((sink.text += s), true) };
  return sink;
}

async function* updates(list: ProgressUpdate[], clock: { t: number }): AsyncGenerator<ProgressUpdate> {
  for (const u of list) {
    clock.t += 1000;
    yield u;
  }
}

const DIGEST = "sha256:2af3b81862c6be03c769683af18efdadb2c33f60ff32ab6f83e42c043d6c7816";
const SMALL = "sha256:966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396";

test("non-TTY: a pull prints each status once and each bar once when it completes", async () => {
  const out = capture();
  const clock = { t: 0 };
  const progress = new Progress({ stream: out, now: () => clock.t });
  const last = await renderNDJSONProgress(
    updates(
      [
        { status: "pulling manifest" },
        { status: "pulling 2af3b81862c6", digest: DIGEST, total: 1_100_000_000 },
        { status: "pulling 966de95ca8a6", digest: SMALL, total: 1_400, completed: 0 },
        { status: "pulling 2af3b81862c6", digest: DIGEST, total: 1_100_000_000, completed: 300_000_000 },
        { status: "pulling 2af3b81862c6", digest: DIGEST, total: 1_100_000_000, completed: 1_100_000_000 },
        { status: "pulling 966de95ca8a6", digest: SMALL, total: 1_400, completed: 1_400 },
        { status: "verifying sha256 digest" },
        { status: "writing manifest" },
        { status: "writing manifest" },
        { status: "success" },
      ],
      clock,
    ),
    progress,
    PULL_PROGRESS,
  );
  progress.stop();
  assert.deepEqual(last, { status: "success" });
  assert.equal(
    out.text,
    [
      "pulling manifest",
      `pulling 2af3b81862c6: 100% ▕${"█".repeat(18)}▏ 1.1 GB`,
      `pulling 966de95ca8a6: 100% ▕${"█".repeat(18)}▏ 1.4 KB`,
      "verifying sha256 digest",
      "writing manifest",
      "success",
      "",
    ].join("\n"),
  );
});

test("non-TTY: create's statuses, a bar labelled by its status, and a spinner whose text changes", async () => {
  const out = capture();
  const clock = { t: 0 };
  const progress = new Progress({ stream: out, now: () => clock.t });
  const copying = progress.spinner("copying file model.gguf 0%");
  copying.setText("copying file model.gguf 50%");
  copying.setText("copying file sha256:abc 100%");
  copying.stop();
  copying.stop();
  await renderNDJSONProgress(
    updates(
      [
        { status: "parsing GGUF" },
        { status: "quantizing F16 model to Q4_K_M", digest: "0000000000000000000", total: 2_000, completed: 0 },
        { status: "quantizing F16 model to Q4_K_M", digest: "0000000000000000000", total: 2_000, completed: 2_000 },
        { status: "verifying conversion" },
        { status: "using autodetected template chatml" },
        { status: "success" },
      ],
      clock,
    ),
    progress,
  );
  progress.stop();
  assert.equal(
    out.text,
    [
      "copying file model.gguf 0%",
      "copying file sha256:abc 100%",
      "parsing GGUF",
      `quantizing F16 model to Q4_K_M 100% ▕${"█".repeat(80 - 35 - 31 - 5)}▏   2 KB`,
      "verifying conversion",
      "using autodetected template chatml",
      "success",
      "",
    ].join("\n"),
  );
});

test("non-TTY: a bar that never completes is printed where it stopped", () => {
  const out = capture();
  const clock = { t: 0 };
  const progress = new Progress({ stream: out, now: () => clock.t });
  const bar = progress.bar("pushing 2af3b81862c6", 1_000_000);
  clock.t = 2_000;
  bar.set(250_000);
  progress.stop();
  progress.stop();
  assert.match(out.text, /^pushing 2af3b81862c6  25% ▕█+ +▏ 250 KB\/  1 MB  125 KB\/s      6s\n$/);
});

test("Bar rate: a sliding window of one sample per second", () => {
  const clock = { t: 0 };
  const progress = new Progress({ stream: capture(), now: () => clock.t });
  const bar = progress.bar("x", 1e12);
  // 1 MB/s for 20 s, then 10 MB/s: after 10 more seconds the window has forgotten the slow part.
  for (let s = 1; s <= 20; s++) {
    clock.t = s * 1000;
    bar.set(s * 1e6);
  }
  assert.equal(bar.rate(), 1e6);
  for (let s = 21; s <= 30; s++) {
    clock.t = s * 1000;
    bar.set(20e6 + (s - 20) * 10e6);
  }
  assert.equal(bar.rate(), 10e6);
  // Updates within the same second do not add samples.
  clock.t = 30_500;
  bar.set(200e6);
  assert.equal(bar.rate(), 10e6);
  progress.stop();
});

test("TTY: redraws in place and leaves the finished lines on screen", async () => {
  const sink = { text: "", isTTY: true, columns: 70, write: (s: string) => ((sink.text += s), true) };
  const clock = { t: 0 };
  const progress = new Progress({ stream: sink, now: () => clock.t });
  const s = progress.spinner("pulling manifest");
  // Until the display's timer has drawn the spinner once.
  while (!sink.text.includes("⠋")) await new Promise((r) => setTimeout(r, 10));
  clock.t = 150;
  s.stop();
  const bar = progress.bar("pulling 2af3b81862c6:", 2_000_000);
  bar.set(2_000_000);
  progress.stop();
   
  const visible = sink.text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
  assert.match(visible, /pulling manifest ⠋/);
  assert.ok(visible.endsWith(`pulling manifest\npulling 2af3b81862c6: 100% ▕${"█".repeat(70 - 26 - 31 - 5)}▏   2 MB${" ".repeat(25)}\n`), JSON.stringify(visible));
});
