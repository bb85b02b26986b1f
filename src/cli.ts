#!/usr/bin/env node
// Owns the command line: `corelb start | check | demo`, --config, --help, --version. Parses
// arguments strictly (an unknown flag is an error with usage), loads the config, and hands over:
// `start` to the supervisor, which forks this same file with CORELB_DATA_PLANE=1 to run the
// primary; `demo` to the primary directly (unsupervised).

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkCommand, formatProblem, loadConfigFile, parseConfig } from './config/index.js';
import { listenerAddress } from './config/listeners.js';
import type { Config, ConfigProblem, LoadResult } from './config/types.js';
import { startDemoBackends } from './demo.js';
import { createLogger } from './log.js';
import { startProxy } from './primary/primary.js';
import { Lifecycle } from './primary/signals.js';
import { assertAddressesFree, configText, CONFIG_FROM_SUPERVISOR, runSupervisor, type DataPlaneMessage } from './primary/supervisor.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `Usage: corelb <command> [options]

Commands:
  start           run the proxy in the foreground (default command)
  check [FILE]    validate a configuration file and exit (0 = ok, 1 = problems); with --print,
                  print the normalised configuration as JSON (secrets masked) instead of "ok"
  demo            start three demo backends and corelb in front of them (config/demo.yaml)

Options:
  -c, --config FILE   configuration file (default: config/corelb.yaml; demo: config/demo.yaml)
  -p, --print         check only: print the normalised configuration
  -h, --help          show this help
  -v, --version       print the version
`;

interface Args {
  command: 'start' | 'check' | 'demo';
  config: string | null;
  print: boolean;
}

function usageError(message: string): never {
  process.stderr.write(`corelb: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { command: 'start', config: null, print: false };
  let commandSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === '-v' || a === '--version') {
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
      process.stdout.write(`corelb ${pkg.version}\n`);
      process.exit(0);
    } else if (a === '-c' || a === '--config') {
      const v = argv[++i];
      if (v === undefined || v.length === 0) usageError(`${a} needs a file`);
      args.config = v;
    } else if (a.startsWith('--config=')) {
      args.config = a.slice('--config='.length);
      if (args.config.length === 0) usageError('--config needs a file');
    } else if (a === '-p' || a === '--print') {
      args.print = true;
    } else if (a.startsWith('-')) {
      usageError(`unknown option ${a}`);
    } else if (commandSeen && args.command === 'check' && args.config === null) {
      // `corelb check FILE`, as `nginx -t -c FILE` users type it
      args.config = a;
    } else if (!commandSeen && (a === 'start' || a === 'check' || a === 'demo')) {
      args.command = a;
      commandSeen = true;
    } else {
      usageError(commandSeen ? `unexpected argument ${a}` : `unknown command ${a}`);
    }
  }
  return args;
}

function orExit(file: string, result: LoadResult): { config: Config; text: string; warnings: readonly ConfigProblem[] } {
  if (!result.ok) {
    for (const p of result.problems) process.stderr.write(formatProblem(p) + '\n');
    process.stderr.write(`corelb: ${file}: ${result.problems.length} problem(s), not started\n`);
    process.exit(1);
  }
  return result;
}

/** The configuration source the supervisor sends right after the fork (see supervisor.ts). */
function configFromSupervisor(): Promise<string> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown): void => {
      const text = configText(m);
      if (text === null) return;
      process.off('message', onMessage);
      resolve(text);
    };
    process.on('message', onMessage);
  });
}

/** Set by the supervisor on the data plane it forks. */
const isDataPlane = process.env.CORELB_DATA_PLANE === '1';

/**
 * The data plane's side of the supervisor: the signals it passes on must not kill this process
 * before their real handlers exist, and losing the supervisor (its IPC channel closes, even when
 * it was SIGKILLed) stops this process gracefully instead of leaving it orphaned.
 */
function superviseFromParent(lifecycle: Lifecycle): void {
  // SIGHUP and SIGUSR1 are the Lifecycle's (reload, reopen logs); SIGUSR2 has no meaning yet, but
  // the supervisor passes it on and its default action would kill this process
  process.on('SIGUSR2', () => undefined);
  process.on('disconnect', () => lifecycle.requestStop('supervisor gone'));
}

function tellSupervisor(m: DataPlaneMessage): void {
  if (!process.connected || process.send === undefined) return;
  // with a callback, a failed send (EPIPE: the supervisor just died) is not an 'error' event
  process.send(m, undefined, {}, () => undefined);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.print && args.command !== 'check') usageError('--print goes with check');
  if (args.command === 'check') {
    const { exitCode, output } = checkCommand(args.config ?? 'config/corelb.yaml', args.print);
    process.stdout.write(output);
    process.exit(exitCode);
  }
  const file = args.config ?? (args.command === 'demo' ? join(root, 'config/demo.yaml') : 'config/corelb.yaml');
  // a data plane the supervisor forked runs the configuration it holds: the last one that loaded
  const loaded = orExit(file, isDataPlane && process.env[CONFIG_FROM_SUPERVISOR] === '1' ? parseConfig(await configFromSupervisor(), file) : loadConfigFile(file));
  const config = loaded.config;
  if (!isDataPlane) {
    try {
      await assertAddressesFree(config.listen);
    } catch (err) {
      process.stderr.write(`corelb: ${(err as Error).message}\n`);
      process.exit(1);
    }
  }
  if (args.command === 'start' && !isDataPlane) return runSupervisor(file, config, loaded.text);
  const output = createLogger(config.log.level, config.log.file);
  const log = output.log;
  // the supervisor's data plane (or demo) says them once; `corelb check` prints them too
  for (const w of loaded.warnings) log.warn({ file: w.file, line: w.line, field: w.path }, w.message);
  const lifecycle = new Lifecycle(log, output.reopen);
  if (isDataPlane) superviseFromParent(lifecycle);
  let closeDemo: (() => Promise<void>) | undefined;
  if (args.command === 'demo') {
    try {
      closeDemo = await startDemoBackends(config);
    } catch (err) {
      log.error({ err }, `cannot start the demo backends: ${(err as Error).message}`);
      log.flush(() => process.exit(1));
      return;
    }
  }
  let proxy;
  try {
    proxy = await startProxy(config, log, file, isDataPlane ? (text) => tellSupervisor({ type: 'config', text }) : undefined);
  } catch {
    await closeDemo?.();
    log.flush(() => process.exit(1));
    return;
  }
  lifecycle.attach(proxy, closeDemo);
  if (isDataPlane) tellSupervisor({ type: 'ready' });
  if (args.command === 'demo') {
    const first = config.listen[0]!;
    const url = `${first.tls === null ? 'http' : 'https'}://${listenerAddress(first)}/`;
    process.stderr.write(
      `\ncorelb demo: ${config.workers} workers in front of ${config.pools[0]?.backends.length ?? 0} demo backends\n` +
        `  try:  curl -s ${url}hello     (repeat it: the backend changes round-robin)\n` +
        `        for i in 1 2 3 4 5 6; do curl -s ${url}; done\n` +
        (config.admin === null ? '' : `  dashboard: http://${config.admin.host}:${config.admin.port}/   metrics: http://${config.admin.host}:${config.admin.port}/metrics\n`) +
        `  stop: Ctrl-C\n\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`corelb: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
