// The deployment artefacts under config/, each checked by the tool that runs it where that tool
// installs here: the systemd unit by `systemd-analyze verify` (and its required settings), the
// logrotate file by `logrotate -d`, the Ansible playbook by `ansible-playbook --syntax-check`, a
// `--check` run against localhost and a real run of its config template through its `validate:`
// (corelb check); the Kubernetes manifests against the API's OpenAPI schemas (kubernetes-models,
// a dev dependency) and for what ties them together; the Dockerfile and compose.yaml, for which
// no checker installs here, are parsed and their required fields checked. Every corelb config
// they carry is validated by corelb's own loader with the environment they set.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import YAML from 'yaml';
import { formatProblem, parseConfig, parseDuration, type Config } from '../../src/config/index.js';
import { CLI, REPO_ROOT } from '../helpers/corelb.js';
import { requireTool } from '../helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'corelb-artefacts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (rel: string): string => readFileSync(join(REPO_ROOT, rel), 'utf8');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; out: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 240_000, env: { ...process.env, ...env } });
  return { status: r.status, out: r.stdout + r.stderr, stderr: r.stderr };
}

/** A corelb config text validated with `env` as the environment; throws with the problems. */
function corelbConfigOf(text: string, env: Record<string, string>, label: string): Config {
  const r = parseConfig(text, label, { env: { CORELB_STATE_FILE: join(dir, 'state.json'), ...env } });
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.config;
}

/** Seconds of a systemd or compose duration like "20s" or "1m". */
function seconds(v: string): number {
  const ms = parseDuration(v);
  if (typeof ms === 'string') throw new Error(`not a duration: ${v}`);
  return ms / 1000;
}

/** The unit file's `Key=value` lines (the last one wins, as systemd reads them). */
function unitSettings(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.startsWith('[') || !line.includes('=')) continue;
    const eq = line.indexOf('=');
    out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/** The reference config's drain, the one every stop timeout must exceed. */
const DRAIN_S = corelbConfigOf(read('config/corelb.yaml'), {}, 'config/corelb.yaml').timeouts.drainMs / 1000;

describe('systemd unit and logrotate', () => {
  it('config/systemd/corelb.service passes systemd-analyze verify and has the settings an operator relies on', () => {
    const analyze = requireTool('systemd-analyze', 'systemd');
    const text = read('config/systemd/corelb.service');
    const s = unitSettings(text);
    expect(s.get('ExecStartPre')).toBe('/usr/local/bin/corelb check --config /etc/corelb/corelb.yaml');
    expect(s.get('ExecStart')).toBe('/usr/local/bin/corelb start --config /etc/corelb/corelb.yaml');
    // both run, in order: a check (a bad file fails the reload visibly), then SIGHUP
    expect(text).toContain('ExecReload=/usr/local/bin/corelb check --config /etc/corelb/corelb.yaml\nExecReload=/bin/kill -HUP $MAINPID\n');
    expect(s.get('KillSignal')).toBe('SIGTERM');
    expect(seconds(s.get('TimeoutStopSec')!)).toBeGreaterThan(DRAIN_S + 5);
    expect(Number(s.get('LimitNOFILE'))).toBeGreaterThanOrEqual(65536);
    expect(s.get('User')).toBe('corelb');
    expect(s.get('AmbientCapabilities')).toBe('CAP_NET_BIND_SERVICE');
    expect(s.get('NoNewPrivileges')).toBe('yes');
    expect(s.get('ProtectSystem')).toBe('strict');
    expect(s.get('StateDirectory')).toBe('corelb');
    expect(s.has('MemoryDenyWriteExecute')).toBe(false); // V8's JIT

    // verify wants the programs to exist: a stand-in for the installed corelb
    const bin = join(dir, 'corelb');
    writeFileSync(bin, `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`);
    chmodSync(bin, 0o755);
    const unit = join(dir, 'corelb.service');
    writeFileSync(unit, text.replaceAll('/usr/local/bin/corelb', bin));
    const r = run(analyze, ['verify', unit]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // and it does notice a mistake
    writeFileSync(unit, text.replaceAll('/usr/local/bin/corelb', bin).replace('KillSignal=', 'KillSignl='));
    expect(run(analyze, ['verify', unit]).stderr).toContain("Unknown key 'KillSignl'");
  });

  it('config/logrotate/corelb passes logrotate -d', () => {
    const logrotate = requireTool('logrotate', 'logrotate');
    const text = read('config/logrotate/corelb');
    expect(text).toContain('/var/log/corelb/corelb.log {');
    expect(text).toContain('--signal=USR1 corelb.service');
    expect(text.split('\n').filter((l) => !l.startsWith('#') && l.includes('copytruncate'))).toEqual([]);
    const group = run('id', ['-gn']).out.split('\n')[0]!;
    const conf = join(dir, 'logrotate.conf');
    writeFileSync(conf, text.replace('/var/log/corelb/corelb.log', join(dir, 'corelb.log')).replace('create 0640 corelb corelb', `create 0640 ${userInfo().username} ${group}`), { mode: 0o644 });
    const r = run(logrotate, ['-d', '-s', join(dir, 'logrotate.status'), conf]);
    expect(r.out).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
  });
});

describe('Ansible role and playbook', () => {
  const role = join(REPO_ROOT, 'config/ansible/roles/corelb');
  const inventory = join(dir, 'inventory');
  writeFileSync(inventory, '[corelb]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n');
  const env = { ANSIBLE_NOCOLOR: '1', ANSIBLE_RETRY_FILES_ENABLED: '0', ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-tmp') };

  it('ansible-playbook --syntax-check, then a --check run against localhost', () => {
    const playbook = requireTool('ansible-playbook', 'ansible-core');
    const syntax = run(playbook, ['--syntax-check', '-i', inventory, 'config/ansible/playbook.yml'], env);
    expect(syntax.out).toContain('playbook: config/ansible/playbook.yml');
    expect(syntax.status).toBe(0);
    const tarball = join(dir, 'corelb-0.0.0.tgz');
    writeFileSync(tarball, 'a stand-in: --check copies nothing');
    // no systemd as PID 1 in this sandbox: the service tasks are the only ones left out
    const check = run(playbook, ['--check', '-i', inventory, 'config/ansible/playbook.yml', '-e', `corelb_tarball=${tarball}`, '-e', 'corelb_manage_service=false'], env);
    expect(check.out, check.out).toMatch(/localhost\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0/);
    expect(check.status).toBe(0);
  });

  it("the role's config template renders a file that its validate (corelb check) accepts, and a bad one is refused", () => {
    const playbook = requireTool('ansible-playbook', 'ansible-core');
    const tasks = YAML.parse(readFileSync(join(role, 'tasks/main.yml'), 'utf8')) as { name: string; 'ansible.builtin.template'?: { validate: string } }[];
    const template = tasks.find((t) => t['ansible.builtin.template'] !== undefined)!['ansible.builtin.template']!;
    expect(template.validate).toBe('{{ corelb_prefix }}/bin/corelb check --config %s');
    const render = (name: string, pools: unknown) => {
      const dest = join(dir, name);
      const pb = join(dir, `${name}.yml`);
      // as extra vars: they win over the role's defaults (vars_files), as an inventory's would
      const vars = join(dir, `${name}.vars.json`);
      writeFileSync(vars, JSON.stringify({ corelb_state_dir: dir, corelb_log_dir: dir, corelb_admin_token: 'ansible-token-0123456789', corelb_pools: pools }));
      writeFileSync(
        pb,
        YAML.stringify([
          {
            hosts: 'localhost',
            connection: 'local',
            gather_facts: false,
            vars_files: [join(role, 'defaults/main.yml')],
            tasks: [{ name: 'render', 'ansible.builtin.template': { src: join(role, 'templates/corelb.yaml.j2'), dest, validate: `${process.execPath} ${CLI} check --config %s` } }],
          },
        ]),
      );
      return { dest, r: run(playbook, ['-i', inventory, pb, '-e', `@${vars}`], env) };
    };
    const good = render('good.yaml', { api: { algorithm: 'least-connections', backends: ['http://10.0.0.1:8080', 'http://10.0.0.2:8080'] } });
    expect(good.r.status, good.r.out).toBe(0);
    const c = corelbConfigOf(readFileSync(good.dest, 'utf8'), {}, good.dest);
    expect(c.pools.map((p) => [p.name, p.algorithm, p.backends.map((b) => b.url)])).toEqual([['api', 'least-connections', ['http://10.0.0.1:8080', 'http://10.0.0.2:8080']]]);
    expect(c.admin).toEqual({ host: '0.0.0.0', port: 9090, token: 'ansible-token-0123456789' });
    const bad = render('bad.yaml', { api: { backends: ['ftp://10.0.0.1'] } });
    expect(bad.r.status).not.toBe(0);
    expect(bad.r.out).toContain('failed to validate');
    expect(existsSync(bad.dest)).toBe(false);
  });
});

describe('container image files (no image builder runs here: parsed and checked)', () => {
  it('Dockerfile: multi-stage on a glibc base, non-root, one uWS binary, tini, SIGTERM, health check on /healthz', () => {
    const text = read('config/docker/Dockerfile');
    // instructions with their continuation lines joined
    const instructions = text
      .replace(/\\\n/g, ' ')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => {
        const sp = l.indexOf(' ');
        return { op: l.slice(0, sp), args: l.slice(sp + 1) };
      });
    const of = (op: string) => instructions.filter((i) => i.op === op).map((i) => i.args);
    const image = text.match(/^ARG NODE_IMAGE=(\S+)$/m)?.[1];
    expect(image).toMatch(/^node:\d+-bookworm-slim$/);
    expect(of('FROM')).toEqual(['${NODE_IMAGE} AS build', '${NODE_IMAGE}']);
    expect(instructions.filter((i) => /alpine/i.test(i.args))).toEqual([]);
    expect(of('USER')).toEqual(['node']);
    expect(of('STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(of('HEALTHCHECK')[0]).toContain("path: '/healthz'");
    expect(of('ENTRYPOINT')).toEqual(['["/usr/bin/tini", "--"]']);
    expect(of('CMD')).toEqual(['["corelb", "start", "--config", "/etc/corelb/corelb.yaml"]']);
    const run = of('RUN').join('\n');
    expect(run).toContain('--omit=dev');
    expect(run).toContain("find . -maxdepth 1 -name 'uws_*.node' ! -name \"$keep\" -delete");
    expect(of('COPY')).toContain('config/docker/corelb.yaml /etc/corelb/corelb.yaml');
    // every COPY from the build context names something the repository has
    for (const c of of('COPY').filter((a) => !a.startsWith('--from'))) {
      for (const src of c.split(' ').slice(0, -1)) expect(existsSync(join(REPO_ROOT, src)), src).toBe(true);
    }
  });

  it('compose.yaml: corelb built from the Dockerfile and three demo backends; the image config is valid with its environment', () => {
    // compose reads YAML merge keys (<<: *backend)
    const compose = YAML.parse(read('config/docker/compose.yaml'), { merge: true }) as { services: Record<string, Record<string, any>> };
    expect(Object.keys(compose.services).sort()).toEqual(['backend1', 'backend2', 'backend3', 'corelb']);
    const lb = compose.services.corelb!;
    expect(existsSync(join(REPO_ROOT, 'config/docker', lb.build.context, lb.build.dockerfile))).toBe(true);
    expect(seconds(lb.stop_grace_period)).toBeGreaterThan(DRAIN_S + 5);
    const env: Record<string, string> = { ...lb.environment, CORELB_ADMIN_TOKEN: 'compose-token-0123456789' };
    const c = corelbConfigOf(read('config/docker/corelb.yaml'), env, 'config/docker/corelb.yaml');
    expect(c.pools[0]!.backends.map((b) => b.url)).toEqual(['http://backend1:3000', 'http://backend2:3000', 'http://backend3:3000']);
    for (const b of ['backend1', 'backend2', 'backend3']) {
      expect(compose.services[b]!.environment.NAME).toBe(b);
      expect(compose.services[b]!.command.join(' ')).toContain('listen(3000)');
    }
    expect(c.listen.map((l) => [l.host, l.port, l.tls])).toEqual([['0.0.0.0', 8080, null]]);
    expect(c.admin?.port).toBe(9090);
    expect(lb.ports).toEqual(['8080:8080', '127.0.0.1:9090:9090']);
    // without the token the image's config is refused at its line
    const r = parseConfig(read('config/docker/corelb.yaml'), 'corelb.yaml', { env: { CORELB_STATE_FILE: join(dir, 's.json') } });
    expect(r.ok ? [] : r.problems.map(formatProblem)).toEqual([expect.stringMatching(/^corelb\.yaml:\d+:\d+ admin\.token: environment variable CORELB_ADMIN_TOKEN is not set/)]);
  });
});

describe('Kubernetes manifests', () => {
  type Doc = Record<string, any>;
  const docs: Doc[] = ['configmap.yaml', 'deployment.yaml', 'service.yaml', 'pdb.yaml', 'hpa.yaml'].map((f) => YAML.parse(read(`config/kubernetes/${f}`)) as Doc);
  const byKind = (kind: string): Doc => {
    const d = docs.find((x) => x.kind === kind);
    if (d === undefined) throw new Error(`no ${kind}`);
    return d;
  };

  it('every object is valid against its Kubernetes API schema; a wrong type is caught', () => {
    const models: Record<string, new (d: Doc) => { validate(): void }> = { ConfigMap, Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler };
    for (const d of docs) {
      const Model = models[d.kind];
      expect(Model, d.kind).toBeDefined();
      expect(() => new Model!(d).validate(), `${d.kind} ${d.metadata.name}`).not.toThrow();
    }
    const broken = structuredClone(byKind('Deployment'));
    broken.spec.template.spec.containers[0].ports[0].containerPort = '8080';
    expect(() => new Deployment(broken).validate()).toThrow(/containerPort must be integer/);
  });

  it('every object has apiVersion, kind and a name; kustomization lists them all', () => {
    expect(docs.map((d) => `${d.apiVersion} ${d.kind} ${d.metadata?.name}`)).toEqual([
      'v1 ConfigMap corelb-config',
      'apps/v1 Deployment corelb',
      'v1 Service corelb',
      'policy/v1 PodDisruptionBudget corelb',
      'autoscaling/v2 HorizontalPodAutoscaler corelb',
    ]);
    const k = YAML.parse(read('config/kubernetes/kustomization.yaml')) as { resources: string[] };
    expect(k.resources).toEqual(['configmap.yaml', 'deployment.yaml', 'service.yaml', 'pdb.yaml', 'hpa.yaml']);
  });

  it('the Deployment probes /readyz and /healthz on the admin port, pauses before SIGTERM, and outlasts the drain', () => {
    const dep = byKind('Deployment');
    const labels = dep.spec.template.metadata.labels;
    expect(dep.spec.selector.matchLabels).toEqual(labels);
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    const ports = Object.fromEntries(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(c.lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
    expect(c.resources.requests.cpu).toBeDefined(); // the HPA's utilisation is relative to it
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);

    // the ConfigMap's corelb.yaml with the container's environment
    const cm = byKind('ConfigMap');
    const env: Record<string, string> = { CORELB_ADMIN_TOKEN: 'k8s-token-0123456789abc' };
    for (const e of c.env as { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[]) {
      if (e.value !== undefined) env[e.name] = e.value;
      else expect(e.valueFrom?.secretKeyRef).toEqual({ name: 'corelb-admin', key: 'token' });
    }
    const config = corelbConfigOf(cm.data['corelb.yaml'], env, 'configmap corelb.yaml');
    expect(config.workers).toBe(Number(c.resources.requests.cpu));
    expect(config.listen[0]!.port).toBe(ports.http);
    expect(config.admin?.port).toBe(ports.admin);
    expect(config.admin?.host).toBe('0.0.0.0');
    const mounts = Object.fromEntries(c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]));
    expect(mounts.config).toBe('/etc/corelb');
    expect(pod.volumes.find((v: Doc) => v.name === 'config').configMap.name).toBe(cm.metadata.name);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(5 + config.timeouts.drainMs / 1000 + 5);
  });

  it('the Service, the PodDisruptionBudget and the HPA select the Deployment', () => {
    const dep = byKind('Deployment');
    const labels = dep.spec.template.metadata.labels;
    const svc = byKind('Service');
    expect(svc.spec.selector).toEqual(labels);
    expect(svc.spec.ports[0].targetPort).toBe('http');
    const pdb = byKind('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(labels);
    expect(pdb.spec.minAvailable).toBeLessThan(dep.spec.replicas);
    const hpa = byKind('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name });
    expect(hpa.spec.metrics[0].resource.name).toBe('cpu');
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(pdb.spec.minAvailable + 1);
  });
});
