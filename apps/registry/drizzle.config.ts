// `npx drizzle-kit generate --config apps/registry/drizzle.config.ts` writes a new migration after a schema change.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./apps/registry/src/db/schema.ts",
  out: "./apps/registry/src/db/migrations",
});
