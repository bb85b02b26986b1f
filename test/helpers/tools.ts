// Finds the system tools that some tests drive (nginx, haproxy, systemd-analyze, logrotate,
// ansible-playbook). A missing tool fails the test with the Debian package that brings it (.ci/run
// installs them): never a silent skip.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The tool's absolute path; throws naming the Debian package when it is not installed. */
export function requireTool(name: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/bin'];
  for (const d of dirs) {
    if (d === '') continue;
    const file = path.join(d, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  throw new Error(`${name} is not installed, and this test needs it: apt-get install -y ${debianPackage} (.ci/run installs it when missing)`);
}
