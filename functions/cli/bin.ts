// The `harbor-replicator` executable's entry: bundled by scripts/build.js into dist/cli/.
import { main } from './main.js';

process.exitCode = await main(process.argv);
