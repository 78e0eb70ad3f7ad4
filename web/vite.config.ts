/**
 * Build of the web app: `web/` is the root, the bundle goes to web/dist (served by gigwire at `/`,
 * src/http/web-app.ts). Hashed file names under assets/ are what lets the server mark them immutable.
 */
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  // Preact's automatic JSX runtime, without a framework plugin (no Babel in the build).
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  resolve: { alias: { react: 'preact/compat', 'react-dom': 'preact/compat' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // One small bundle: the app is a handful of screens.
    reportCompressedSize: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npx vite web` during development: REST and the WebSocket go to a running `npm start`.
    proxy: { '/v1': 'http://127.0.0.1:3000', '/ws': { target: 'ws://127.0.0.1:3000', ws: true } },
  },
});
