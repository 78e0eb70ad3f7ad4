/**
 * The web app's stored chat outboxes as a browser test reads them (web/src/outbox.ts keeps them in
 * sessionStorage under OUTBOX_KEY_PREFIX + user id). Imports playwright types and web/src only.
 */
import type { Page } from 'playwright-core';
import { OUTBOX_KEY_PREFIX } from '../../web/src/outbox.js';

export const OUTBOX_PREFIX = OUTBOX_KEY_PREFIX;

/** This page's sessionStorage entries of stored outboxes. */
export const storedOutboxes = (page: Page): Promise<Record<string, string>> =>
  page.evaluate(`(() => {
    const found = {};
    for (let index = 0; index < sessionStorage.length; index += 1) {
      const key = sessionStorage.key(index);
      if (key !== null && key.startsWith(${JSON.stringify(OUTBOX_KEY_PREFIX)})) found[key] = sessionStorage.getItem(key);
    }
    return found;
  })()`);
