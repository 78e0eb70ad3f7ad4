/**
 * `npm start` (and `node dist/src/bin/main.js`): the gigwire process for every ROLE.
 * Exit codes: 0 after a clean shutdown; 1 on a start failure, a failed or late shutdown, or a fatal
 * error; 2 on invalid configuration (one line on stderr naming the variable).
 *
 * This file only takes SIGTERM/SIGINT (early-signals.ts) before loading the rest, so a signal while
 * the modules load ends the process with exit 0, not Node's default 143/130. Keep its imports tiny.
 */
import { holdStopSignals } from './early-signals.js';

const signals = holdStopSignals(process);
const { runProcess } = await import('./run-process.js');
await runProcess(signals);
