/**
 * Reading sysfs/procfs/devfs under a root prefix. The prefix is '/' in real use; tests point it
 * at fixture trees (a test-only option, never needed on a real box).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export class SysRoot {
  constructor(readonly root = '/') {}

  path(p: string): string {
    return this.root === '/' ? p : path.join(this.root, p);
  }

  exists(p: string): boolean {
    return fs.existsSync(this.path(p));
  }

  read(p: string): string | undefined {
    try {
      return fs.readFileSync(this.path(p), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  write(p: string, value: string): void {
    fs.writeFileSync(this.path(p), value);
  }

  /** Basename of a symlink's target (e.g. a driver or iommu_group link), or undefined. */
  linkName(p: string): string | undefined {
    try {
      return path.basename(fs.readlinkSync(this.path(p)));
    } catch {
      return undefined;
    }
  }

  list(p: string): string[] {
    try {
      return fs.readdirSync(this.path(p)).sort();
    } catch {
      return [];
    }
  }

  /** Opening an existing node for read+write is permitted for this process. */
  accessible(p: string, mode = fs.constants.R_OK | fs.constants.W_OK): boolean {
    try {
      fs.accessSync(this.path(p), mode);
      return true;
    } catch {
      return false;
    }
  }
}

export const HOST = new SysRoot('/');
