FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY bin/postinstall.js bin/postinstall.js
RUN npm ci --omit=dev --no-audit --no-fund
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
ENTRYPOINT ["node", "bin/gkh-bus.js"]
CMD ["start"]
