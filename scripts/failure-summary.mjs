// A second reporter for node's test runner, written after the TAP stream: each test that failed,
// with its file and the first lines of its error. A full run prints some 15,000 lines, and a log
// that keeps only its end (a CI page, a terminal's scroll-back) would otherwise say that a test
// failed but not which.
import { relative } from "node:path";

/** Lines of an error kept in the summary; the TAP stream above has the whole of it. */
const ERROR_LINES = 12;

/** The error's own message: the runner wraps a test's error in one of its own. */
function describe(error) {
  const inner = error?.failureType === "testCodeFailure" && error.cause ? error.cause : error;
  const text = inner instanceof Error ? (inner.stack ?? String(inner)) : String(inner);
  // Frames inside node itself say nothing about the test.
  const lines = text.split("\n").filter((line) => !/^\s+at (.*\()?(node:|new Promise|new SafePromise)/.test(line));
  return lines.slice(0, ERROR_LINES).map((line) => `#     ${line}`).join("\n");
}

export default async function* failureSummary(source) {
  const failed = [];
  for await (const event of source) {
    if (event.type !== "test:fail") continue;
    // A suite that failed because a test in it failed repeats what is already listed.
    if (event.data.details?.error?.failureType === "subtestsFailed") continue;
    failed.push(event.data);
  }
  if (failed.length === 0) return;
  yield `\n# ${failed.length} failed:\n`;
  for (const t of failed) {
    // The reported line is where the test is declared in tsx's output, not in the source: left out.
    const where = t.file ? relative(process.cwd(), t.file) : "(no file)";
    yield `# - ${t.name}\n#   ${where}\n${describe(t.details?.error)}\n`;
  }
}
