#!/usr/bin/env node
// Entry point of the `harbor-replicator` command: the compiled CLI in dist/ (`npm run build`).
import { main } from '../dist/functions/cli/main.js';

process.exitCode = await main(process.argv);
