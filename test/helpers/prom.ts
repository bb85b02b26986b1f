// A small, strict parser of the Prometheus text exposition format (0.0.4), for tests: it throws on
// anything `promtool check metrics` would flag and on what corelb promises besides (HELP and TYPE
// before a family's samples, a family's samples together, TYPE counter / gauge / histogram only,
// counters named *_total, histograms with cumulative buckets ending in le="+Inf" equal to _count,
// valid names, numeric values, no duplicate series).

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: Sample[];
}

export type Exposition = ReadonlyMap<string, Family>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram'];

class ParseError extends Error {
  constructor(line: number, message: string, text: string) {
    super(`line ${line}: ${message}: ${JSON.stringify(text.length > 120 ? text.slice(0, 120) + '…' : text)}`);
  }
}

function parseValue(raw: string): number | undefined {
  if (raw === '+Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  if (raw === 'NaN') return NaN;
  // Go's ParseFloat: decimal or exponent notation, nothing else (no hex, no blanks)
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) return undefined;
  return Number(raw);
}

/** `{a="x",b="y"}` from index `at` (at the '{'); returns the labels and the index after '}'. */
function parseLabels(text: string, at: number, fail: (m: string) => never): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = at + 1;
  for (let guard = 0; guard < 10_000; guard++) {
    if (text[i] === '}') return { labels, end: i + 1 };
    const eq = text.indexOf('=', i);
    if (eq < 0) fail('label without "="');
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) fail(`invalid label name ${JSON.stringify(name)}`);
    if (name.startsWith('__')) fail(`label name ${name} is reserved (starts with __)`);
    if (name in labels) fail(`duplicate label ${name}`);
    if (text[eq + 1] !== '"') fail(`label ${name}: value not quoted`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length; j++) {
      const c = text[j]!;
      if (c === '"') break;
      if (c === '\\') {
        const n = text[++j];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else fail(`label ${name}: invalid escape \\${n ?? ''}`);
      } else value += c;
    }
    if (j >= text.length) fail(`label ${name}: value never closed`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') fail(`expected "," or "}" after label ${name}`);
  }
  return fail('too many labels');
}

function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  return name + JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The family a sample name belongs to, given the family now open. */
function sampleAllowed(f: Family, name: string): boolean {
  if (f.type !== 'histogram') return name === f.name;
  return name === `${f.name}_bucket` || name === `${f.name}_sum` || name === `${f.name}_count`;
}

export function parseExposition(text: string): Exposition {
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let open: Family | null = null;
  let pendingHelp: { name: string; help: string } | null = null;
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, k) => {
    const n = k + 1;
    const fail = (m: string): never => {
      throw new ParseError(n, m, line);
    };
    if (line === '') fail('empty line');
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (m === null) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) fail(`invalid metric name ${JSON.stringify(name)}`);
      if (families.has(name) || closed.has(name)) fail(`${kind} for family ${name} seen before`);
      if (kind === 'HELP') {
        if (pendingHelp !== null) fail(`HELP for ${pendingHelp.name} has no TYPE`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) fail('invalid escape in HELP');
        pendingHelp = { name, help: rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\') };
        return;
      }
      if (pendingHelp === null || pendingHelp.name !== name) fail(`TYPE for ${name} without a HELP line just before it`);
      const type = TYPES.find((t) => t === rest);
      if (type === undefined) fail(`TYPE must be one of ${TYPES.join(', ')}`);
      if (type === 'counter' && !name.endsWith('_total')) fail(`counter ${name} must end in _total`);
      if (type !== 'counter' && name.endsWith('_total')) fail(`${type} ${name} must not end in _total`);
      if (/_(bucket|count|sum)$/.test(name)) fail(`family name ${name} must not end in _bucket, _count or _sum`);
      if (open !== null) closed.add(open.name);
      open = { name, type: type!, help: pendingHelp!.help, samples: [] };
      families.set(name, open);
      pendingHelp = null;
      return;
    }
    if (pendingHelp !== null) fail(`HELP for ${pendingHelp.name} has no TYPE`);
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) fail('sample without a value');
    const name = line.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) fail(`invalid metric name ${JSON.stringify(name)}`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i, fail));
    if (line[i] !== ' ') fail('expected a blank before the value');
    const parts = line.slice(i + 1).split(' ');
    if (parts.length > 2) fail('trailing characters after the value');
    const value = parseValue(parts[0]!);
    if (value === undefined) fail(`value ${JSON.stringify(parts[0])} is not a number`);
    if (parts.length === 2 && !/^-?\d+$/.test(parts[1]!)) fail('timestamp is not an integer');
    const fam = open as Family | null;
    if (fam === null || !sampleAllowed(fam, name)) fail(`sample ${name} outside its family (no TYPE line for it just before)`);
    if (fam!.type === 'counter' && !(value! >= 0)) fail(`counter ${name} must be a number >= 0`);
    if (name.endsWith('_bucket') && fam!.type === 'histogram' && labels.le === undefined) fail('histogram bucket without an le label');
    if (!name.endsWith('_bucket') && labels.le !== undefined && fam!.type === 'histogram') fail('le label outside a bucket');
    const key = seriesKey(name, labels);
    if (series.has(key)) fail('duplicate series');
    series.add(key);
    fam!.samples.push({ name, labels, value: value! });
  });
  if (pendingHelp !== null) throw new Error(`HELP for ${(pendingHelp as { name: string }).name} has no TYPE`);
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** Per label set: buckets in ascending le, cumulative, the last le="+Inf" equal to _count; a _sum. */
function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: { le: number; value: number }[]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey('', rest);
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { buckets: [] }));
    if (s.name.endsWith('_bucket')) {
      const bound = parseValue(le!);
      if (bound === undefined || Number.isNaN(bound)) throw new Error(`${f.name}: le=${JSON.stringify(le)} is not a number`);
      g.buckets.push({ le: bound, value: s.value });
    } else if (s.name.endsWith('_sum')) g.sum = s.value;
    else g.count = s.value;
  }
  for (const [key, g] of groups) {
    const where = `${f.name}${key}`;
    if (g.buckets.length === 0) throw new Error(`${where}: no buckets`);
    for (let k = 1; k < g.buckets.length; k++) {
      if (!(g.buckets[k]!.le > g.buckets[k - 1]!.le)) throw new Error(`${where}: le bounds not ascending`);
      if (g.buckets[k]!.value < g.buckets[k - 1]!.value) throw new Error(`${where}: buckets not cumulative`);
    }
    const last = g.buckets[g.buckets.length - 1]!;
    if (last.le !== Infinity) throw new Error(`${where}: the last bucket must be le="+Inf"`);
    if (g.count === undefined) throw new Error(`${where}: no _count`);
    if (g.sum === undefined) throw new Error(`${where}: no _sum`);
    if (last.value !== g.count) throw new Error(`${where}: le="+Inf" bucket (${last.value}) differs from _count (${g.count})`);
  }
}

/** The value of one series; throws when absent. Labels must match exactly. */
export function metric(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const family = e.get(name) ?? e.get(name.replace(/_(bucket|sum|count)$/, ''));
  const key = seriesKey(name, labels);
  const s = family?.samples.find((x) => seriesKey(x.name, x.labels) === key);
  if (s === undefined) throw new Error(`no series ${name}${JSON.stringify(labels)}`);
  return s.value;
}

/** Sum of the samples named `name` whose labels include `match`. */
export function metricSum(e: Exposition, name: string, match: Record<string, string> = {}): number {
  const family = e.get(name) ?? e.get(name.replace(/_(bucket|sum|count)$/, ''));
  let total = 0;
  for (const s of family?.samples ?? []) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}
