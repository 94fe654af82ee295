#!/usr/bin/env node
// Entry point of the `harbor-replicator` command: the bundled CLI (`npm run build`).
import '../dist/cli/bin.mjs';
