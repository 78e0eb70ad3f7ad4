/**
 * Loads uWebSockets.js, which npm does not publish under its own name (SPEC.md §1): first a newer
 * build where one is installed (`@btc-vision/uwebsockets.js`, Node 20-25, glibc ≥ 2.38), then the
 * native binary of the `uWebSockets.js` alias for this Node ABI. The alias would silently fall back
 * to a slow JS implementation on other ABIs; we refuse that and serve WebSockets through the
 * @fastify/websocket transport instead. Which engine is live is logged, reported by /health/live and
 * exported as a metric.
 */

import type * as uws from 'uWebSockets.js';
import { createRequire } from 'node:module';

export type UwsModule = typeof uws;

export interface WebSocketEngine {
  /** `uws` (native uWebSockets.js) or `fastify-ws` (only the fallback transport serves /ws). */
  readonly name: 'uws' | 'fastify-ws';
  /** Which package and binary loaded, or why none did. */
  readonly detail: string;
  readonly uws: UwsModule | undefined;
}

export function loadWebSocketEngine(): WebSocketEngine {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  try {
    const module = require('@btc-vision/uwebsockets.js') as UwsModule;
    if (typeof module.App === 'function')
      return { name: 'uws', detail: '@btc-vision/uwebsockets.js', uws: module };
  } catch (error) {
    failures.push(`@btc-vision/uwebsockets.js: ${(error as Error).message.split('\n')[0]}`);
  }
  const binary = `uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    const module = require(binary) as UwsModule;
    if (typeof module.App === 'function') return { name: 'uws', detail: binary, uws: module };
  } catch (error) {
    failures.push(`${binary}: ${(error as Error).message.split('\n')[0]}`);
  }
  return {
    name: 'fastify-ws',
    detail: `no native uWebSockets.js build loads (${failures.join('; ')})`,
    uws: undefined,
  };
}
