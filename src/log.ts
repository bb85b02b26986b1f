// Owns logger creation: pino JSON on stdout through an asynchronous destination, so a log line
// never blocks the request path (and works the same in worker threads).

import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/types.js';

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 1, sync: false, minLength: 0 }));
}
