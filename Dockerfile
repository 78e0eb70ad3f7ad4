# syntax=docker/dockerfile:1
# Multi-stage build: compile TypeScript once, ship only production dependencies and the compiled code.
# Node 22 (a supported LTS; CI runs the unit tests and a whole-node test under it) on Debian 13
# (glibc 2.41): the newer uWebSockets.js build below needs glibc >= 2.38, which Debian 12 lacks.

FROM node:22-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY protocol ./protocol
COPY src ./src
RUN npm run build
# The web app (web/README.md): built here, served from web/dist by the api and all roles.
COPY web ./web
COPY scripts/web-build.mjs ./scripts/
RUN node scripts/web-build.mjs

FROM node:22-trixie-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 LOG_PRETTY=false INSTALL_SYSTEM_PACKAGES=false
WORKDIR /app
COPY package.json package-lock.json ./
# The locked `uWebSockets.js` alias has binaries up to Node 20 only; @btc-vision/uwebsockets.js
# (Node 20/22/24/25, glibc >= 2.38) is what src/gateway/engine.ts loads first. It is installed here
# only, pinned, so dev machines on glibc 2.36 are not given 114 MB they cannot load. Without it
# the engine falls back to /ws on PORT (@fastify/websocket) and logs why.
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm install --no-save --omit=dev --no-audit --no-fund @btc-vision/uwebsockets.js@20.57.0 \
  && node -e "require('@btc-vision/uwebsockets.js')" \
  && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
# The operator commands the README gives (`npm run migrate`, `admin:create`, `admin:unlock`,
# `keys:rotate`, `ledger:audit`) run the TypeScript sources with tsx (a production dependency), so
# `docker-compose run --rm api npm run migrate` works as written; the server itself runs dist/.
COPY --from=build /app/src ./src
COPY --from=build /app/protocol/src ./protocol/src
USER node
EXPOSE 3000
# Probes liveness without curl (not in the slim image): a database or Redis outage must not mark
# every node unhealthy at once (an orchestrator would restart them all); load balancers use
# /health/ready.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node directly (not npm) so SIGTERM reaches gigwire and the graceful shutdown runs.
CMD ["node", "dist/src/bin/main.js"]
