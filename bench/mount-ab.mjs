#!/usr/bin/env node
// Compares cairn checkouts on the steps of the mount benchmark, for a machine shared with other work:
// runs alternate between the checkouts, and besides wall time each step reports the CPU time the
// mount process spent on it (user+sys from /proc/PID/stat), which other load disturbs far less, and its
// minor page faults, and the machine's disk reads (requests completed, all block devices).
// Not the benchmark (bench/mount.mjs is, run alone); a tool to tell whether a change helps.
//
//   node bench/mount-ab.mjs --repo REPO --archive NAME --checkout A --checkout B [--runs 3]
//
// Environment as for cairn (CAIRN_PASSPHRASE, CAIRN_CACHE_DIR, CAIRN_CONFIG_DIR). Root is needed to
// drop the page cache before mounting, before the read and before cp -a, as bench/mount.mjs does.
// Every mount is unmounted whatever happens.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    repo: { type: 'string' },
    archive: { type: 'string' },
    checkout: { type: 'string', multiple: true },
    runs: { type: 'string', default: '3' },
    steps: { type: 'string', default: 'ls,walk,read,cp' },
    'large-file': { type: 'string', default: 'media/footage/raw-capture-0001.mov' },
    'small-dir': { type: 'string', default: 'projects/bulk-small-files' },
    // A tmpfs, as bench/mount.mjs --copy-to: on an ext4 without a journal, files deleted in the last
    // minutes make creating new ones slow, which the previous run's copy would do.
    'copy-to': { type: 'string', default: '/dev/shm' },
  },
});
if (!o.repo || !o.archive || !o.checkout?.length) {
  console.error('usage: node bench/mount-ab.mjs --repo REPO --archive NAME --checkout DIR [--checkout DIR]... [--runs N] [--steps ls,walk,read,cp]');
  process.exit(2);
}
const steps = new Set(o.steps.split(','));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-mount-ab-'));
const mnt = path.join(work, 'mnt');
fs.mkdirSync(mnt);
const copyRoot = fs.mkdtempSync(path.join(o['copy-to'], 'cairn-mount-ab-copy-'));

const mounted = () => fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
const dropCaches = () => {
  spawnSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
};
const statFields = (pid) => {
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return st.slice(st.lastIndexOf(')') + 2).split(' ');
};
const cpuS = (pid) => {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / 100;
};
/** Minor page faults of the process so far (all its threads). */
const faults = (pid) => Number(statFields(pid)[7]);
/** Read requests the machine's block devices (whole devices, /sys/block) have completed so far. */
const diskReads = () => fs.readdirSync('/sys/block').reduce((sum, dev) => sum + Number(fs.readFileSync(`/sys/block/${dev}/stat`, 'utf8').trim().split(/\s+/)[0]), 0);
const memMiB = (pid, field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const daemonPid = () => {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const args = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (args.includes('--foreground') && args.includes(mnt)) return Number(d);
    } catch {}
  }
  throw new Error('no mount process found');
};
const sh = (cmd) => {
  const t0 = performance.now();
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}: ${r.stderr}`);
  return { wall: (performance.now() - t0) / 1000, out: r.stdout.trim() };
};
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

async function run(checkout) {
  const cairn = path.join(path.resolve(checkout), 'dist/cli/main.js');
  const root = path.join(mnt, o.archive);
  const row = {};
  dropCaches();
  const t0 = performance.now();
  const res = spawnSync(process.execPath, [cairn, 'mount', o.repo, mnt], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (res.status !== 0) throw new Error(`cairn mount failed (${res.status})`);
  try {
    const pid = daemonPid();
    const step = (name, cmd) => {
      const c0 = cpuS(pid);
      const f0 = faults(pid);
      const d0 = diskReads();
      const r = sh(cmd);
      row[`${name} s`] = r.wall;
      row[`${name} CPU s`] = cpuS(pid) - c0;
      row[`${name} faults`] = faults(pid) - f0;
      row[`${name} disk reads`] = diskReads() - d0;
      return r.out;
    };
    if (steps.has('ls')) {
      step('ls', `ls ${q(root)} >/dev/null`);
      row['first ls s'] = (performance.now() - t0) / 1000;
    }
    if (steps.has('walk')) {
      step('walk', `find ${q(root)} | wc -l`);
      row['RSS after walk MiB'] = memMiB(pid, 'VmRSS');
      row['HWM after walk MiB'] = memMiB(pid, 'VmHWM');
    }
    if (steps.has('read')) {
      dropCaches();
      const out = step('read', `dd if=${q(path.join(root, o['large-file']))} of=/dev/null bs=1M 2>&1 | tail -1`);
      const dd = /^(\d+) bytes .* copied, ([\d.]+) s/.exec(out);
      if (!dd) throw new Error(`cannot read dd's figures in: ${out}`);
      row['read MiB/s'] = Number(dd[1]) / 2 ** 20 / Number(dd[2]);
    }
    if (steps.has('cp')) {
      const dest = path.join(copyRoot, 'cp');
      spawnSync('rm', ['-rf', dest]); // fs.rmSync would mangle the non-UTF-8 names
      fs.mkdirSync(dest);
      dropCaches();
      step('cp -a', `cp -a ${q(path.join(root, o['small-dir']))} ${q(dest)}`);
    }
    row['RSS at end MiB'] = memMiB(pid, 'VmRSS');
  } finally {
    spawnSync(process.execPath, [cairn, 'umount', mnt], { stdio: 'ignore', timeout: 60_000 });
    if (mounted()) spawnSync('fusermount', ['-uz', mnt]);
    if (mounted()) spawnSync('umount', ['-l', mnt]);
  }
  return row;
}

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const rows = new Map(o.checkout.map((c) => [c, []]));
try {
  for (let i = 0; i < Number(o.runs); i++) {
    for (const c of o.checkout) {
      const row = await run(c);
      rows.get(c).push(row);
      console.error(`run ${i + 1} ${c}: ${JSON.stringify(row, (_, v) => (typeof v === 'number' ? Number(v.toFixed(3)) : v))}`);
    }
  }
} finally {
  spawnSync('rm', ['-rf', '--one-file-system', copyRoot]);
  if (mounted()) console.error(`bench: ${mnt} is still mounted; left ${work} in place`);
  else spawnSync('rm', ['-rf', '--one-file-system', work]);
}
const keys = Object.keys(rows.get(o.checkout[0])[0] ?? {});
console.log(`| medians of ${o.runs} | ${o.checkout.join(' | ')} |`);
console.log(`| --- |${o.checkout.map(() => ' ---: |').join('')}`);
for (const k of keys) console.log(`| ${k} | ${o.checkout.map((c) => median(rows.get(c).map((r) => r[k])).toFixed(k.includes('MiB') ? 0 : 2)).join(' | ')} |`);
