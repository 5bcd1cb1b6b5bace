// A docker-compose project on a container engine (./container-engine.ts): build, bring up,
// exec, tear down. Services are brought up one at a time in dependency order, each waited for
// until it meets the condition its dependents declare (healthy, completed successfully, started)
// by polling the engine, never by a timer: compose's own wait gives up after a health check's
// `retries`, which a slow machine can exhaust. A health check that keeps failing still ends the
// wait, after a number of failed probes.

import { join } from "node:path";
import { parse } from "yaml";
import { runProgram, tail, type Engine, type RunResult } from "./container-engine.ts";

/** Consecutive failed health probes after which a service counts as broken rather than slow. */
const MAX_FAILING_PROBES = 60;

type Want = "healthy" | "completed" | "running";

interface ServiceConfig {
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: unknown;
}

interface ContainerState {
  Status: string;
  ExitCode: number;
  Health?: { Status: string; FailingStreak: number; Log?: Array<{ Output: string }> };
}

export interface ComposeProject {
  name: string;
  /** docker-compose -p <name> -f <files> <args>, in the project directory. */
  run(args: string[], opts?: { input?: string }): Promise<RunResult>;
  /** Starts every service in dependency order, each once its dependencies are ready; returns the order. */
  upInOrder(): Promise<string[]>;
  /** Runs a command in a service's container (no TTY). */
  exec(service: string, args: string[], opts?: { input?: string }): Promise<RunResult>;
  /** The service's container id. */
  container(service: string): Promise<string>;
  /** Stops and removes the containers, networks and volumes. */
  down(): Promise<RunResult>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function dependencies(svc: ServiceConfig): Record<string, string> {
  const d = svc.depends_on;
  if (!d) return {};
  if (Array.isArray(d)) return Object.fromEntries(d.map((name) => [name, "service_started"]));
  return Object.fromEntries(Object.entries(d).map(([name, v]) => [name, v?.condition ?? "service_started"]));
}

/** Services in an order where each comes after what it depends on, with what each must reach. */
export function startOrder(services: Record<string, ServiceConfig>): Array<{ service: string; want: Want }> {
  const want = new Map<string, Want>();
  for (const [name, svc] of Object.entries(services)) want.set(name, svc.healthcheck ? "healthy" : "running");
  for (const svc of Object.values(services)) {
    for (const [dep, condition] of Object.entries(dependencies(svc))) {
      if (condition === "service_completed_successfully") want.set(dep, "completed");
      else if (condition === "service_healthy") want.set(dep, "healthy");
    }
  }
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string): void => {
    if (order.includes(name)) return;
    if (visiting.has(name)) throw new Error(`compose services depend on each other in a cycle through ${name}`);
    visiting.add(name);
    for (const dep of Object.keys(dependencies(services[name] ?? {}))) visit(dep);
    order.push(name);
  };
  for (const name of Object.keys(services).sort()) visit(name);
  return order.map((service) => ({ service, want: want.get(service)! }));
}

/** `files` are relative to `dir`, the project directory (build contexts are relative to it too). */
export function composeProject(engine: Engine, project: { name: string; dir: string; files: string[]; env?: NodeJS.ProcessEnv }): ComposeProject {
  const { name, dir, files, env = {} } = project;
  const fullEnv = { ...engine.env, ...env };
  const base = ["-p", name, "--project-directory", dir, ...files.flatMap((f) => ["-f", join(dir, f)])];
  const run = (args: string[], opts: { input?: string } = {}): Promise<RunResult> =>
    runProgram("docker-compose", [...base, ...args], { env: fullEnv, cwd: dir, input: opts.input });
  const container = async (service: string): Promise<string> => (await run(["ps", "-q", service])).stdout.trim();
  const logs = async (service: string): Promise<string> => tail((await run(["logs", "--no-color", service])).stdout, 30);

  const waitFor = async (service: string, want: Want): Promise<void> => {
    for (;;) {
      const id = await container(service);
      if (id) {
        const r = await engine.docker(["inspect", "--format", "{{json .State}}", id]);
        if (r.code === 0) {
          const s = JSON.parse(r.stdout) as ContainerState;
          const stopped = s.Status === "exited" || s.Status === "dead";
          if (want === "completed" && stopped) {
            if (s.ExitCode === 0) return;
            throw new Error(`${service} exited with ${s.ExitCode}:\n${await logs(service)}`);
          }
          if (want !== "completed" && stopped) throw new Error(`${service} stopped (exit ${s.ExitCode}) before it was ready:\n${await logs(service)}`);
          if (want === "running" && s.Status === "running") return;
          if (want === "healthy") {
            if (!s.Health) throw new Error(`${service} has no health check, yet a service waits for it to be healthy`);
            if (s.Health.Status === "healthy") return;
            if (s.Health.FailingStreak >= MAX_FAILING_PROBES) {
              throw new Error(`${service} failed its health check ${s.Health.FailingStreak} times in a row; last probe: ${s.Health.Log?.at(-1)?.Output ?? ""}\n${await logs(service)}`);
            }
          }
        }
      }
      await sleep(500);
    }
  };

  return {
    name,
    run,
    container,
    async upInOrder() {
      const config = await run(["config"]);
      if (config.code !== 0) throw new Error(`docker-compose config: ${config.stderr}`);
      const order = startOrder((parse(config.stdout) as { services: Record<string, ServiceConfig> }).services);
      for (const { service, want } of order) {
        const up = await run(["up", "-d", "--no-deps", "--no-build", service]);
        if (up.code !== 0) throw new Error(`docker-compose up ${service}: ${tail(up.stderr)}`);
        await waitFor(service, want);
      }
      return order.map((o) => o.service);
    },
    exec: (service, args, opts = {}) => run(["exec", "-T", service, ...args], opts),
    down: () => run(["down", "--volumes", "--remove-orphans"]),
  };
}
