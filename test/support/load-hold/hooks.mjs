// Module customization hooks (see register.mjs); they run on Node's loader thread.
import { writeFileSync } from 'node:fs';

let marker;
let held = false;

export function initialize(data) {
  marker = data?.marker;
}

export async function resolve(specifier, context, next) {
  if (marker !== undefined && !held && /run-process\.(js|ts)$/.test(specifier)) {
    held = true;
    writeFileSync(marker, String(process.pid));
    await new Promise((done) => setTimeout(done, 3_000));
  }
  return next(specifier, context);
}
