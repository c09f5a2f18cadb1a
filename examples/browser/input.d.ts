/** Types of input.js, for the TypeScript code (the test) that computes the same image. */
export declare function exampleImage(shape: readonly number[], seed: number): Float32Array;
