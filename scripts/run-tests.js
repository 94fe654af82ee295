#!/usr/bin/env node
// Runs the compiled test files with node's test runner (Node 20 takes no globs): two files at
// a time on CI's two cores, each test bounded in time. The runner's summary ("# pass N",
// "# fail N") is what CI reads.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';

const dir = 'dist/test';
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => `${dir}/${f}`);

const child = spawn(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=180000', ...files],
  { stdio: 'inherit', env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
