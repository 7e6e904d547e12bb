export * from './command-decoder.js';
export * from './commands.js';
export * from './errors.js';
export * from './frame-decoder.js';
export * from './frames.js';
export * from './identify.js';
export * from './message-id.js';
export * from './names.js';
