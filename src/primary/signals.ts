// Owns the signals of a foreground data plane (nginx's master signals, for one process): SIGTERM
// and SIGINT drain and exit 0, SIGQUIT stops at once, SIGHUP reloads the configuration, SIGUSR1
// reopens the log files; also when they arrive while the proxy is still starting.

import type { Logger } from 'pino';
import type { RunningProxy } from './primary.js';

/**
 * The signal handling of a foreground proxy, installed before anything starts: SIGTERM / SIGINT
 * drain and exit 0, SIGQUIT stops at once, also when they arrive while the workers are still
 * starting (the stop then runs as soon as they are up). SIGHUP reloads the config file. An
 * exception that reaches the primary stops the workers first: exiting while they hold uWS sockets
 * would abort the process. SIGUSR1 reopens log.file in the primary and in every worker (log
 * rotation), then logs `logs reopened` (into the new file).
 */
export class Lifecycle {
  private readonly log: Logger;
  private readonly reopenLog: () => Promise<void>;
  private proxy: RunningProxy | null = null;
  private onStopped: (() => Promise<void>) | undefined;
  private requested: string | null = null;
  private immediate = false;
  private stopping = false;

  constructor(log: Logger, reopenLog: () => Promise<void>) {
    this.log = log;
    this.reopenLog = reopenLog;
    process.on('SIGTERM', () => this.request('SIGTERM'));
    process.on('SIGINT', () => this.request('SIGINT'));
    process.on('SIGQUIT', () => this.request('SIGQUIT', true));
    process.on('SIGHUP', () => this.reload());
    process.on('SIGUSR1', () => this.reopenLogs());
    process.on('uncaughtException', (err) => {
      log.fatal({ err }, 'uncaught exception in the primary: stopping');
      this.stop(1);
    });
  }

  /** The proxy is up: serve until a signal (or run the stop that one already asked for). */
  attach(proxy: RunningProxy, onStopped?: () => Promise<void>): void {
    this.proxy = proxy;
    this.onStopped = onStopped;
    if (this.requested !== null) this.stop(0);
  }

  /** The graceful stop of SIGTERM for a cause that is not a signal (the supervisor went away). */
  requestStop(reason: string): void {
    this.request(reason);
  }

  private reload(): void {
    const proxy = this.proxy;
    if (proxy === null || this.stopping) {
      this.log.warn({ signal: 'SIGHUP' }, proxy === null ? 'reload ignored: still starting' : 'reload ignored: stopping');
      return;
    }
    this.log.info({ signal: 'SIGHUP' }, 'reloading configuration');
    proxy.reload().catch((err: unknown) => this.log.error({ err }, 'reload failed'));
  }

  private reopenLogs(): void {
    const own = this.reopenLog().then(
      () => true,
      (err: unknown) => {
        this.log.error({ err }, 'cannot reopen the log file: still writing to the old one');
        return false;
      },
    );
    // while starting there are no control ports yet; the workers open the file when they start
    const dataPlane = this.proxy?.dataPlane;
    const workers = dataPlane === undefined ? Promise.resolve(0) : dataPlane.reopenLogs();
    void Promise.all([own, workers]).then(([primary, confirmed]) => {
      const expected = this.proxy?.config.workers ?? 0;
      const fields = { signal: 'SIGUSR1', primary, workers: confirmed };
      if (primary && confirmed === expected) this.log.info(fields, 'logs reopened');
      else this.log.warn({ ...fields, expected }, 'logs reopened, but not by every writer: some still write to the old file');
    });
  }

  private request(signal: string, immediate = false): void {
    if (immediate && !this.immediate) {
      // SIGQUIT after SIGTERM still cuts the drain short
      this.immediate = true;
      if (this.requested !== null && this.proxy !== null) {
        this.log.info({ signal }, 'stopping at once');
        void this.proxy.dataPlane.stop(0);
        return;
      }
    }
    if (this.requested !== null) {
      this.log.warn({ signal }, 'already stopping');
      return;
    }
    this.requested = signal;
    this.log.info({ signal }, this.proxy === null ? 'stop requested while starting' : immediate ? 'stopping at once' : 'stopping: draining in-flight requests');
    if (this.proxy !== null) this.stop(0);
  }

  private stop(code: number): void {
    if (this.stopping) return;
    this.stopping = true;
    const proxy = this.proxy;
    const done = proxy === null ? Promise.resolve() : proxy.stop(this.immediate ? 0 : undefined);
    done
      .then(() => this.onStopped?.())
      .then(
        () => {
          this.log.info('stopped');
          this.log.flush(() => process.exit(code));
        },
        (err: unknown) => {
          this.log.error({ err }, 'error while stopping');
          this.log.flush(() => process.exit(1));
        },
      );
  }
}
