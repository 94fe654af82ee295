// What the engine uses of undici, and nothing else: Agent, Dispatcher#request, the connector and ProxyAgent
// (wrapped to check addresses, see shared/registry/address-policy.ts), wired the way undici's
// index.js wires them (redirects are followed by shared/registry/http.ts itself, hop by hop, so
// credentials stay with their origin). The bundled CLI starts in a third of the time without
// fetch, WebSocket, mocks and the cache (see scripts/build.js). Internal paths are pinned by
// package-lock.json, and every CLI test runs this bundle.
'use strict';
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js');
const Agent = require('undici/lib/dispatcher/agent.js');
const buildConnector = require('undici/lib/core/connect.js');

Dispatcher.prototype.request = require('undici/lib/api/api-request.js');

module.exports = {
  Agent,
  Dispatcher,
  buildConnector,
  // Loaded only when a forward proxy is configured (HTTPS_PROXY, a registry's proxy_url).
  get ProxyAgent() {
    // CONNECT tunnels go through Dispatcher#connect, as undici's index.js wires it.
    Dispatcher.prototype.connect ??= require('undici/lib/api/api-connect.js');
    return require('undici/lib/dispatcher/proxy-agent.js');
  },
};
