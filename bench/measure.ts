// What every benchmark measures about one command: wall time, its own CPU (user + sys) and
// peak RSS (GNU time), and the CPU the registries spent meanwhile (/proc/<pid>/stat), from
// which the CPU floor: on a machine of `cores` cores shared by the command and the registries,
// no run can take less wall time than (our CPU + the registries' CPU) / cores.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** One measured run. */
export interface Sample {
  seconds: number;
  /** The command's user + system CPU seconds (its children included). */
  cpu: number;
  /** The registries' CPU seconds during the run. */
  registryCpu: number;
  /** (cpu + registryCpu) / cores: the shortest wall time the machine allows. */
  floor: number;
  rssMiB: number;
  /**
   * CPU seconds the rest of the machine (other processes, the kernel's own threads) used during
   * the run: the machine's busy time (/proc/stat) less ours and the registries'. On a shared
   * machine this is what pushes a wall time above the floor without being anyone's request.
   */
  othersCpu: number;
}

const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
/** Cores the command and the registries share (the figures are for this machine). */
export const CORES = cpus().length;

/** CPU seconds all cores have spent busy so far (everything but idle and iowait, /proc/stat). */
export function machineBusy(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const busy = fields[0]! + fields[1]! + fields[2]! + fields[5]! + fields[6]! + fields[7]!;
  return busy / TICKS;
}

/** CPU seconds (utime + stime, all threads) a live process has used so far; 0 once it is gone. */
export function processCpu(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICKS;
  } catch {
    return 0;
  }
}

/**
 * Runs `cmd` under GNU time; wall, CPU and peak RSS, and the CPU the processes `watch` (the
 * registries) used meanwhile. Throws when the command fails.
 */
export async function measure(cmd: string, args: string[], opts: { env?: Record<string, string>; watch?: Array<number | undefined> } = {}): Promise<Sample> {
  if (!existsSync('/usr/bin/time')) throw new Error('the benchmark measures CPU and peak RSS with GNU time (/usr/bin/time): apt-get install time');
  const watch = opts.watch ?? [];
  const before = watch.map(processCpu);
  const busyBefore = machineBusy();
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-f', 'HR_TIME %U %S %M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  const seconds = (performance.now() - started) / 1000;
  const busy = machineBusy() - busyBefore;
  const registryCpu = watch.reduce<number>((n, pid, i) => n + Math.max(0, processCpu(pid) - before[i]!), 0);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`);
  const m = /HR_TIME ([\d.]+) ([\d.]+) (\d+)/.exec(stderr);
  const cpu = m ? Number(m[1]) + Number(m[2]) : 0;
  return { seconds, cpu, registryCpu, floor: (cpu + registryCpu) / CORES, rssMiB: Number(m?.[3] ?? 0) / 1024, othersCpu: Math.max(0, busy - cpu - registryCpu) };
}

/** The median (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The medians of a set of samples, field by field. */
export function medians(samples: Sample[]): Sample {
  const of = (k: keyof Sample) => median(samples.map((s) => s[k]));
  return { seconds: of('seconds'), cpu: of('cpu'), registryCpu: of('registryCpu'), floor: of('floor'), rssMiB: of('rssMiB'), othersCpu: of('othersCpu') };
}

/** skopeo's version, for the tables' titles. */
export function skopeoVersion(): string {
  return /version (\S+)/.exec(execFileSync('skopeo', ['--version'], { encoding: 'utf8' }))?.[1] ?? '';
}
