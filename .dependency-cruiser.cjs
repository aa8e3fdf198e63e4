// Switchyard's import rules, checked in CI (`npm run depcheck`, dependency-cruiser). README, Architecture,
// draws the layers. TypeScript is parsed with swc: TypeScript 7's native compiler has no JavaScript API for
// tools to parse with, and without a parser dependency-cruiser would see 0 modules and pass, so refuse to run.
// (It still prints a "missing-tsc-transpiler" notice for TypeScript 7: swc parses every file regardless.)
require('@swc/core');

// The layers, lowest first: a module imports from its own layer or a lower one, never a higher one.
// Each `path` is a regex on the path from the repository root.
const LAYERS = [
  { name: 'model', path: '^src/(model/|types/|version\\.ts$)' },
  { name: 'config', path: '^src/config/' },
  { name: 'redis', path: '^src/redis/' },
  { name: 'stores', path: '^src/(registry|breaker|task|metrics|events)/|^src/callbacks/callback-outbox\\.ts$|^src/workflow/run-store\\.ts$|^src/schedule/schedule-store\\.ts$' },
  // the workflow engine, its sweep, its node kinds (node-kinds.ts lists them) and the run views
  { name: 'engines', path: '^src/(routing|agent|health|housekeeping)/|^src/callbacks/(?!callback-outbox\\.ts$)|^src/workflow/(?!run-store\\.ts$)|^src/schedule/(?!schedule-store\\.ts$)' },
  { name: 'wiring', path: '^src/wiring/' },
  { name: 'top', path: '^src/(api|cli|client)/|^src/index\\.ts$' },
];

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `no-upward-from-${layer.name}`,
  comment: `${layer.name} imports only from ${LAYERS.slice(0, i + 1).map((l) => l.name).join(', ')}`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: LAYERS.slice(i + 1).map((l) => `(?:${l.path})`).join('|') },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'every-src-file-has-a-layer',
      comment: 'a new folder under src/ gets a layer in LAYERS before it is used',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERS.map((l) => `(?:${l.path})`).join('|') },
      to: {},
    },
    ...upward,
    {
      name: 'model-is-pure',
      comment: 'the model imports zod, semver, cron-parser (schedules), Node crypto (task ids) and itself only: no Redis, BullMQ, Express or I/O',
      severity: 'error',
      from: { path: '^src/model/' },
      to: { dependencyTypes: ['npm', 'npm-dev', 'core'], pathNot: '^(node_modules/(zod|semver|cron-parser)/|crypto$)' },
    },
    {
      name: 'no-folder-cycles',
      comment: 'folders under src/ form no cycle',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { path: '^src/', circular: true },
    },
    {
      name: 'no-module-cycles',
      comment: 'no file-level import cycle anywhere',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'src-not-to-deployment',
      comment: 'src/ is the package: it never imports the deployment (queues/, workers/) or the dashboard (handed in)',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(queues|workers|dashboard)/' },
    },
    {
      name: 'bench-examples-public-entry-only',
      comment: 'bench/ and examples/ use the package as a user would: through src/index.ts only',
      severity: 'error',
      from: { path: '^(bench|examples)/' },
      to: { path: '^src/', pathNot: '^src/index\\.ts$' },
    },
    {
      name: 'no-unresolvable',
      comment: 'every import resolves (a dropped edge would hide a violation)',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    parser: 'swc',
    // type-only imports count: an `import type` across layers is still a dependency on that layer
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'node', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
    },
  },
};
