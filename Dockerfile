# libxmljs (native XSD validation, an optional dependency) is built from source: the build tools stay in this stage
FROM node:20-bookworm-slim AS deps
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY bin/postinstall.js bin/postinstall.js
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules node_modules
COPY bin bin
COPY config config
COPY connectors connectors
COPY gateway gateway
COPY routes routes
COPY schemas schemas
COPY simulator simulator
COPY transformers transformers
COPY examples examples
COPY tsconfig.json ./
# the bus keeps little live data: a heap cap makes V8 collect before RSS grows (README "Performance")
ENV NODE_OPTIONS=--max-old-space-size=256
ENTRYPOINT ["node", "bin/gkh-bus.js"]
CMD ["start"]
