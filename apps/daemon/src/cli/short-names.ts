// Short model names (`alice/story`, `llama3.2`) as the CLI sends them to the daemon.
//
// Ollama's CLI sends a name as typed and its server completes it with registry.ollama.ai, which is
// fixed. Corral's default registry is a setting, CORRAL_REGISTRY, and the person typing the command
// sets it where they type: in the CLI's environment, which the daemon (started earlier, elsewhere,
// perhaps by a service manager) does not share. So when CORRAL_REGISTRY is set here, the CLI
// completes a name that has no host itself and the daemon receives the full name; when it is not
// set, the name goes as typed and the daemon completes it exactly as Ollama's server does.

import { ModelName } from "@corral/shared/name";
import { daemonConfig, type DaemonConfig } from "../config.ts";

/** `model` completed with CORRAL_REGISTRY's host when that is set and the name has no host. */
export function qualify(model: string, config: Pick<DaemonConfig, "registry"> = daemonConfig()): string {
  if (config.registry === undefined) return model;
  if (ModelName.parseRaw(model.trim()).host !== "") return model;
  const full = ModelName.parse(model, config.registry);
  // An invalid name goes as typed, for the daemon to name the problem in its usual words.
  return full.isValid() ? full.toString() : model;
}
