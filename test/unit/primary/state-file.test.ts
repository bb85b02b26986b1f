// Tests for src/primary/state-file.ts and the state_file setting: what is written reads back the
// same; the file is replaced whole (no temporary file left, mode 600); a missing file, a corrupt
// one and bad entries are warnings with the reason, never a throw; state_file is checked at
// load time like log.file (directory must exist and be writable) and is resolved to an absolute path.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatProblem, parseConfig } from '../../../src/config/index.js';
import { readStateFile, writeStateFile, type KeptBackend } from '../../../src/primary/state-file.js';

const dir = mkdtempSync(join(tmpdir(), 'corelb-state-unit-'));
const kept: KeptBackend[] = [
  { pool: 'web', backend: 'http://127.0.0.1:3001', draining: true, weight: null, ejectedUntil: 0, ejections: 0 },
  { pool: 'web', backend: 'http://127.0.0.1:3002', draining: false, weight: 7, ejectedUntil: 1_900_000_000_000, ejections: 2 },
];

describe('state file', () => {
  it('reads back what was written, replacing the file whole', () => {
    const file = join(dir, 'a.json');
    writeStateFile(file, kept);
    writeStateFile(file, kept.slice(1));
    expect(readStateFile(file)).toEqual({ ok: true, backends: kept.slice(1), warnings: [] });
    expect(readdirSync(dir).filter((f) => f.startsWith('a.json'))).toEqual(['a.json']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a missing file, a corrupt one or another document is a warning, not a throw', () => {
    const missing = readStateFile(join(dir, 'none.json'));
    expect(missing).toMatchObject({ ok: false, missing: true });
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"version": 1, "backends": [');
    const r = readStateFile(bad);
    expect(r.ok).toBe(false);
    if (!r.ok) expect([r.missing, r.warning]).toEqual([false, expect.stringContaining('is not valid JSON')]);
    writeFileSync(bad, '{"version": 2, "backends": []}');
    expect(readStateFile(bad)).toMatchObject({ ok: false, warning: expect.stringContaining('not a corelb state file of version 1') });
  });

  it('a bad entry is left out with its reason; the others are read', () => {
    const file = join(dir, 'entries.json');
    const entries = [kept[0], { ...kept[1], weight: 0 }, { ...kept[1], draining: 'yes' }, { ...kept[1], ejectedUntil: -1 }, 'x'];
    writeFileSync(file, JSON.stringify({ version: 1, backends: entries }));
    expect(readStateFile(file)).toEqual({
      ok: true,
      backends: [kept[0]],
      warnings: [
        `state file ${file}: entry 1 ignored: weight is not null or an integer from 1 to 1000`,
        `state file ${file}: entry 2 ignored: draining is not true or false`,
        `state file ${file}: entry 3 ignored: ejectedUntil is not a time in ms`,
        `state file ${file}: entry 4 ignored: not an object`,
      ],
    });
  });

  it('state_file is resolved to an absolute path; a missing directory is a located problem', () => {
    const pool = 'pools: { web: { backends: [http://a:1] } }\n';
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const r = parseConfig(`state_file: ${join(sub, 'corelb.state')}\n${pool}`, 't.yaml');
    expect(r.ok && r.config.stateFile).toBe(join(sub, 'corelb.state'));
    expect(existsSync(join(sub, 'corelb.state'))).toBe(false); // checked, not created
    const bad = parseConfig(`state_file: ${join(dir, 'nope', 'x')}\n${pool}`, 't.yaml');
    expect(bad.ok ? [] : bad.problems.map(formatProblem)).toEqual([`t.yaml:1:13 state_file: directory ${join(dir, 'nope')} does not exist`]);
  });
});
