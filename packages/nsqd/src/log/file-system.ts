import * as fsp from 'node:fs/promises';

/** The calls the log makes on an open file (a node:fs/promises FileHandle is one). */
export interface FileHandleLike {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  truncate(length: number): Promise<void>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/**
 * The file operations of the segment logs and the storage: node:fs/promises in the broker, a
 * wrapper that injects faults (EIO, ENOSPC) in tests.
 */
export interface FileSystem {
  open(path: string, flags: 'r' | 'r+' | 'w+'): Promise<FileHandleLike>;
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  truncate(path: string, length: number): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: true }): Promise<void>;
  writeFile(path: string, data: Buffer, options: { flush: true }): Promise<void>;
}

export const nodeFileSystem: FileSystem = {
  open: (path, flags) => fsp.open(path, flags),
  mkdir: (path, options) => fsp.mkdir(path, options),
  readdir: (path) => fsp.readdir(path),
  readFile: (path) => fsp.readFile(path),
  truncate: (path, length) => fsp.truncate(path, length),
  unlink: (path) => fsp.unlink(path),
  rmdir: (path) => fsp.rmdir(path),
  rename: (from, to) => fsp.rename(from, to),
  rm: (path, options) => fsp.rm(path, options),
  writeFile: (path, data, options) => fsp.writeFile(path, data, options),
};
