// Tests for src/config/env.ts through parseConfig: ${VAR} and ${VAR:-default} are replaced from
// the environment before the YAML is read (numbers stay numbers, flow style works, comments are
// left alone, $${ is a literal), and every variable that cannot be replaced is a problem at its
// field, line and column in the file as written, with later positions on the line unshifted.
import { describe, expect, it } from 'vitest';
import { formatProblem, parseConfig, type Config } from '../../../src/config/index.js';
import { substituteEnv } from '../../../src/config/env.js';

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

function parse(text: string, env: Record<string, string>) {
  return parseConfig(text, 'env.yaml', { availableParallelism: 2, env });
}

function config(text: string, env: Record<string, string>): Config {
  const r = parse(text, env);
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.config;
}

function problems(text: string, env: Record<string, string>): string[] {
  const r = parse(text, env);
  if (r.ok) throw new Error('expected problems, got a valid config');
  return r.problems.map(formatProblem);
}

describe('environment variables in the config', () => {
  it('replaces ${VAR} in block and flow style; a number stays a number', () => {
    const c = config(
      lines(
        'listen: { host: "${HOST}", port: ${PORT} }',
        'workers: ${WORKERS}',
        'admin:',
        '  port: ${ADMIN_PORT}',
        '  token: ${TOKEN}',
        'pools:',
        '  web:',
        '    backends: [ "http://${BACKEND}:3001", http://b:${B_PORT} ]',
      ),
      { HOST: '127.0.0.2', PORT: '8081', WORKERS: '3', ADMIN_PORT: '9091', TOKEN: 'a-token-of-24-characters', BACKEND: 'api.internal', B_PORT: '3002' },
    );
    expect(c.listen.map((l) => [l.host, l.port])).toEqual([['127.0.0.2', 8081]]);
    expect(c.workers).toBe(3);
    expect(c.admin).toEqual({ host: '127.0.0.1', port: 9091, token: 'a-token-of-24-characters' });
    expect(c.pools[0]!.backends.map((b) => b.url)).toEqual(['http://api.internal:3001', 'http://b:3002']);
  });

  it('uses the default when the variable is unset or empty, the value when it is set', () => {
    const text = lines('listen: { port: ${PORT:-8082} }', 'pools:', '  web: { backends: ["${UP:-http://127.0.0.1:3001}"] }');
    expect(config(text, {}).listen[0]!.port).toBe(8082);
    expect(config(text, { PORT: '' }).listen[0]!.port).toBe(8082);
    expect(config(text, { PORT: '8083' }).listen[0]!.port).toBe(8083);
    expect(config(text, { UP: 'http://10.0.0.9:80' }).pools[0]!.backends[0]!.url).toBe('http://10.0.0.9:80');
  });

  it('leaves comments and $${ alone', () => {
    const c = config(lines('# set ${NOT_SET} in the unit file', 'pools: # ${ALSO_NOT_SET}', '  web:', '    backends: ["http://a:1"]', '    health: { path: "/h$${x}" }'), {});
    expect(c.pools[0]!.health?.path).toBe('/h${x}');
  });

  it('an unset variable without a default is a problem at its field, line and column', () => {
    expect(problems(lines('listen:', '  port: ${PORT}', 'pools:', '  web:', '    backends: [http://a:1, "http://${BACKEND_HOST}:80"]'), {})).toEqual([
      'env.yaml:2:9 listen.port: environment variable PORT is not set (give a default with ${PORT:-default})',
      'env.yaml:5:36 pools.web.backends[1]: environment variable BACKEND_HOST is not set (give a default with ${BACKEND_HOST:-default})',
    ]);
  });

  it('positions after a replaced value on the same line are those of the file as written', () => {
    // the value is longer than ${P}: the bad workers value still points at column 40
    expect(problems(lines('listen: { host: "${H}", port: 8080 }, workers: many', 'pools: { web: { backends: [http://a:1] } }'), { H: '127.0.0.1' })[0]).toMatch(/^env\.yaml:1:/);
    const p = problems(lines('listen: { host: "${H}", port: 0 }', 'pools: { web: { backends: [http://a:1] } }'), { H: 'a-much-longer-host-name.example' });
    expect(p).toEqual(['env.yaml:1:31 listen.port: expected an integer from 1 to 65535, got number 0']);
  });

  it('a bad name, an unclosed ${ and a value with a line break are problems', () => {
    expect(problems(lines('workers: ${1X}', 'pools: { web: { backends: [http://a:1] } }'), {})).toEqual([
      'env.yaml:1:10 workers: environment variable: "${1X}" is not a variable name (letters, digits and _, not starting with a digit), or "${NAME:-default}"',
    ]);
    expect(problems(lines('workers: ${W', 'pools: { web: { backends: [http://a:1] } }'), {})[0]).toBe(
      'env.yaml:1:10 workers: environment variable: "${" without a closing "}" on the same line (write "$${" for a literal "${")',
    );
    expect(problems(lines('workers: ${W}', 'pools: { web: { backends: [http://a:1] } }'), { W: '2\nlisten: x' })).toEqual([
      "env.yaml:1:10 workers: environment variable W holds a line break, which would change the file's structure",
    ]);
  });

  it('maps offsets of the replaced text back to the original', () => {
    const s = substituteEnv('a: ${X}, b: 1', { X: 'longer' });
    expect(s.text).toBe('a: longer, b: 1');
    expect(s.originalOffset(3)).toBe(3);
    expect(s.originalOffset(8)).toBe(3); // inside the value: its ${
    expect(s.originalOffset(s.text.indexOf('b'))).toBe('a: ${X}, b: 1'.indexOf('b'));
  });
});
