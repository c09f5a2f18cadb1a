/**
 * The worker variant's dedicated worker (a module worker): it owns the WebGPU device and the
 * session, so loading (fetching, hashing, uploading weights) and running never block the page.
 * The page posts { id, type: 'load', bundleUrl } once, then { id, type: 'run', seed }; each gets
 * one { id, type: 'done', value } or { id, type: 'failed', error } back, and runs in flight send
 * { type: 'memory', memory } samples.
 */
import { describeError, openExample, runExample } from './engine.js';

let example;

const handlers = {
  async load({ bundleUrl }) {
    example = await openExample(bundleUrl);
    return example.info;
  },
  async run({ seed }) {
    if (!example) throw new Error('run before load');
    return runExample(example, seed, (memory) => postMessage({ type: 'memory', memory }));
  },
};

// one request at a time, in order: the session queues runs anyway, and load must finish before a run
let queue = Promise.resolve();

self.onmessage = ({ data }) => {
  queue = queue.then(async () => {
    try {
      postMessage({ id: data.id, type: 'done', value: await handlers[data.type](data) });
    } catch (error) {
      postMessage({ id: data.id, type: 'failed', error: describeError(error) });
    }
  });
};
