// Worker entry (plain JS): registers tsx so the TypeScript compiler sources load in this thread.
import { register } from 'tsx/esm/api';

register();
await import('./compile-worker.ts');
