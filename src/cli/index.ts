/** Entry point of the `flokie` CLI (bin/flokie.js, `npm run flokie -- …`); the commands are in program.ts. */
import { main } from './program.js';

process.exitCode = await main();
