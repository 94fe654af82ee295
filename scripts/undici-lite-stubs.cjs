// Stand-ins the CLI bundle uses for two undici modules the engine never reaches (see
// scripts/build.js): the HTTP/2 client (only used when a dispatcher sets `allowH2`, which ours
// never do) and fetch's body extractor (only for FormData request bodies; ours are bytes or
// streams). Bundled, the real ones cost start-up for nothing: node:http2 and its internals load
// at require time, and fetch's body module brings WebIDL and the FormData parser (~40 KB of
// minified code parsed by every command that makes a request). Each stand-in fails loudly if
// that assumption ever breaks.
'use strict';

function unsupported(what) {
  return () => {
    throw new Error(`harbor-replicator's bundled HTTP client has no ${what} (scripts/undici-lite-stubs.cjs)`);
  };
}

// Both shapes in one module: `require('./client-h2.js')` is the connect function itself,
// `require('../web/fetch/body.js').extractBody` a property.
module.exports = Object.assign(unsupported('HTTP/2 client'), { extractBody: unsupported('FormData request bodies') });
