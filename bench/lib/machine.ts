/**
 * The machine a result was measured on, as the results must state it: CPU model, cores, RAM,
 * kernel, Node version, the sysctls that bound socket counts (fs.nr_open, fs.file-max,
 * net.core.somaxconn, the ephemeral port range, tcp_mem) and the open-files limit (ulimit -n).
 */
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly ramGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly sysctls: Readonly<Record<string, string>>;
  readonly ulimitNofile: string;
  readonly pinning: string;
}

function readTrimmed(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return 'n/a';
  }
}

/** `ulimit -n` of this process (soft, and hard), which spawned servers and workers inherit. */
function openFilesLimit(): string {
  const match = /Max open files\s+(\S+)\s+(\S+)/.exec(readTrimmed('/proc/self/limits'));
  return match === null ? 'n/a' : `${match[1]} (hard ${match[2]})`;
}

export function machineInfo(pinning: string): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    // Not availableParallelism(): the orchestrator has already pinned itself to one core.
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    sysctls: {
      'fs.nr_open': readTrimmed('/proc/sys/fs/nr_open'),
      'fs.file-max': readTrimmed('/proc/sys/fs/file-max'),
      'net.core.somaxconn': readTrimmed('/proc/sys/net/core/somaxconn'),
      'net.ipv4.ip_local_port_range': readTrimmed('/proc/sys/net/ipv4/ip_local_port_range'),
      'net.ipv4.tcp_mem': readTrimmed('/proc/sys/net/ipv4/tcp_mem'),
      'net.ipv4.tcp_tw_reuse': readTrimmed('/proc/sys/net/ipv4/tcp_tw_reuse'),
    },
    ulimitNofile: openFilesLimit(),
    pinning,
  };
}
