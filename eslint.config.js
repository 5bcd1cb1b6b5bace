// Lint for every TypeScript file in the repository, run by `npm test` (npm run lint).
// typescript-eslint's recommended rules, and drizzle's: a delete or update through a database handle
// must have a where clause (a missing one would empty or rewrite a whole table).
import tseslint from "typescript-eslint";
import drizzle from "eslint-plugin-drizzle";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "apps/*/src/**/*.mjs", "**/*.cjs"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts", "**/*.tsx"],
    plugins: { drizzle },
    rules: {
      // A leading underscore marks what is unused on purpose (a skipped tuple element, a parameter an
      // interface requires).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_", caughtErrors: "none" }],
      "drizzle/enforce-delete-with-where": ["error", { drizzleObjectName: ["db", "tx", "database"] }],
      "drizzle/enforce-update-with-where": ["error", { drizzleObjectName: ["db", "tx", "database"] }],
    },
  },
);
