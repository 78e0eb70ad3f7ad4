/**
 * `NODE_OPTIONS=--import=<this file>` with GIGWIRE_TEST_LOAD_MARKER=<path>: when main.ts starts
 * loading run-process (the rest of gigwire), the hook writes the marker file and holds that load
 * for 3 s, so a test can send a signal at a known moment inside the module-loading window.
 */
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url, { data: { marker: process.env.GIGWIRE_TEST_LOAD_MARKER } });
