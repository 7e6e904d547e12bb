import { type FileHandleLike, type FileSystem, nodeFileSystem } from './file-system.js';

/** The error a refused write gets: what a failing disk answers. */
function ioError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault, write`), { code });
}

/**
 * The real file system with faults on demand: while `failWrites` > 0 each write to an open
 * file fails (and counts it down) with `errorCode`, before a byte is written; while `held` is set, writes to
 * open files wait for it (a slow disk). Reads are counted.
 */
export class FaultyFileSystem implements FileSystem {
  failWrites = 0;
  errorCode = 'EIO';
  /** Writes refused so far. */
  refused = 0;
  /** Bytes read from open files so far. */
  bytesRead = 0;
  /** Writes wait for this while it is set. */
  held: Promise<void> | null = null;
  private readonly real: FileSystem;

  constructor(real: FileSystem = nodeFileSystem) {
    this.real = real;
  }

  async open(path: string, flags: 'r' | 'r+' | 'w+'): Promise<FileHandleLike> {
    const fd = await this.real.open(path, flags);
    return {
      read: async (buffer, offset, length, position) => {
        const r = await fd.read(buffer, offset, length, position);
        this.bytesRead += r.bytesRead;
        return r;
      },
      write: async (buffer, offset, length, position) => {
        if (this.held !== null) await this.held;
        if (this.failWrites > 0) {
          this.failWrites--;
          this.refused++;
          throw ioError(this.errorCode);
        }
        return fd.write(buffer, offset, length, position);
      },
      truncate: (length) => fd.truncate(length),
      datasync: () => fd.datasync(),
      sync: () => fd.sync(),
      stat: () => fd.stat(),
      close: () => fd.close(),
    };
  }

  mkdir(path: string, options: { recursive: true }): Promise<unknown> {
    return this.real.mkdir(path, options);
  }

  readdir(path: string): Promise<string[]> {
    return this.real.readdir(path);
  }

  readFile(path: string): Promise<Buffer> {
    return this.real.readFile(path);
  }

  truncate(path: string, length: number): Promise<void> {
    return this.real.truncate(path, length);
  }

  unlink(path: string): Promise<void> {
    return this.real.unlink(path);
  }

  rmdir(path: string): Promise<void> {
    return this.real.rmdir(path);
  }

  rename(from: string, to: string): Promise<void> {
    return this.real.rename(from, to);
  }

  rm(path: string, options: { force: true }): Promise<void> {
    return this.real.rm(path, options);
  }

  writeFile(path: string, data: Buffer, options: { flush: true }): Promise<void> {
    if (this.failWrites > 0) {
      this.failWrites--;
      this.refused++;
      return Promise.reject(ioError(this.errorCode));
    }
    return this.real.writeFile(path, data, options);
  }
}
