// Lint for every TypeScript file in the repository, run by `npm test` (npm run lint).
// typescript-eslint's recommended rules, and drizzle's: a delete or update through a database handle
// must have a where clause (a missing one would empty or rewrite a whole table). And the project's
// conventions (STYLE.md): `private` rather than `#` fields, one style for a reader to learn; a
// function takes at most four parameters, more go in one options object named by their roles; each
// source file opens with a comment saying what it is for.
import tseslint from "typescript-eslint";
import drizzle from "eslint-plugin-drizzle";

/** Each source file's first lines are a comment: what the file holds and why it is a file. */
const fileHeader = {
  meta: { type: "suggestion", schema: [], messages: { missing: "start the file with a comment saying what it holds" } },
  create(context) {
    return {
      Program(node) {
        const first = context.sourceCode.getAllComments()[0];
        const code = node.body[0];
        if (code && (!first || first.range[0] > code.range[0])) context.report({ node: code, messageId: "missing" });
      },
    };
  },
};

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
      "no-restricted-syntax": ["error", { selector: "PrivateIdentifier", message: "use a `private` field, the project's one convention" }],
      "max-params": ["error", 4],
    },
  },
  {
    files: ["apps/*/src/**/*.ts", "apps/*/src/**/*.tsx", "packages/*/src/**/*.ts"],
    plugins: { corral: { rules: { "file-header": fileHeader } } },
    rules: { "corral/file-header": "error" },
  },
);
