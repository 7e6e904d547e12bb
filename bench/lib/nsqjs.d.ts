// The part of nsqjs (which ships no types) that client-worker.js uses.
declare module 'nsqjs' {
  import type { EventEmitter } from 'node:events';

  type Body = string | Buffer;

  class Writer extends EventEmitter {
    constructor(host: string, port: number, options?: object);
    connect(): void;
    publish(topic: string, msgs: Body | Body[], callback?: (err?: Error) => void): void;
    close(): void;
  }

  interface Message {
    attempts: number;
    body: Buffer;
    finish(): void;
  }

  class Reader extends EventEmitter {
    constructor(topic: string, channel: string, options: { nsqdTCPAddresses?: string[]; maxInFlight?: number });
    connect(): void;
    close(): void;
  }

  const nsqjs: { Writer: typeof Writer; Reader: typeof Reader };

  export type { Message, Reader, Writer };
  export default nsqjs;
}
