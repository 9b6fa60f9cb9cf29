/**
 * Raw password-hashing capacity of this machine: bcrypt verifications per second at the given
 * cost, using every core (the native verify runs in libuv's thread pool; we keep twice as many
 * verifications in flight as there are cores so no core ever idles). This is the ceiling that
 * login throughput is compared with. Prints one JSON line.
 *
 * Usage: tsx bench/hash-capacity.ts <cost> <seconds>
 */
import { availableParallelism } from 'node:os';
import * as bcrypt from '@node-rs/bcrypt';

const cost = Number(process.argv[2] ?? 12);
const seconds = Number(process.argv[3] ?? 5);
const hash = await bcrypt.hash('capacity-probe-password', cost);
const inFlight = Math.max(4, availableParallelism() * 2);

let done = 0;
const cpuBefore = process.cpuUsage();
const started = performance.now();
const end = started + seconds * 1000;
async function worker() {
  while (performance.now() < end) {
    if (!(await bcrypt.verify('capacity-probe-password', hash))) throw new Error('verify returned false');
    done++;
  }
}
await Promise.all(Array.from({ length: inFlight }, worker));
const elapsed = (performance.now() - started) / 1000;
// CPU of every thread of this process per verification: what one login's hash costs, however busy the machine is.
const cpu = process.cpuUsage(cpuBefore);
const cpuMsPerVerify = (cpu.user + cpu.system) / 1000 / done;
const figures = { cost, inFlight, verifications: done, seconds: elapsed, perSecond: done / elapsed, cpuMsPerVerify };
process.stdout.write(`${JSON.stringify(figures)}\n`);
