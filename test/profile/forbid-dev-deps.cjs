/**
 * Preloaded (node -r) into a flashmemc CLI process by test/profile/cli-profile.test.ts: fails any
 * import or require of a dev-only package, so the test proves `flashmemc profile` runs from dist/
 * with production dependencies only.
 */
const Module = require('node:module');

const FORBIDDEN = /^(typescript|ts-morph|vitest|tsx|@ts-morph\/common)(\/|$)/;

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (FORBIDDEN.test(request)) throw new Error(`dev-only package ${request} was required`);
  return resolveFilename.call(this, request, ...rest);
};

Module.register(`data:text/javascript,${encodeURIComponent(`
  const FORBIDDEN = ${FORBIDDEN};
  export async function resolve(specifier, context, next) {
    if (FORBIDDEN.test(specifier)) throw new Error('dev-only package ' + specifier + ' was imported by ' + context.parentURL);
    return next(specifier, context);
  }
`)}`);
