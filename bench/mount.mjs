#!/usr/bin/env node
// Mount benchmark: borg mount, restic mount, cairn mount on the repos left by bench/core.mjs,
// optionally on a tree of (by default) one million tiny files and on a 1 GiB random file.
// Every mount is unmounted in a finally block and by exit/signal handlers; the run ends with a
// check of /proc/mounts. See bench/RESULTS.md for what each figure means.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  CFG, COMMON_HELP, MiB, cacheNote, compareManifests, die, dropCaches, duBytes, fmt, forceUnmount, headerMd,
  isMounted, loadManifest, machineInfo, manifest, mdTable, median, mkdirp, mountsUnder, nowIso, parseOptions,
  pidAlive, pidsWithArg, posInt, procCpuS, procStatusKiB, ratioTable, rmrf, rmrfUnder, saveRaw, selectTools, sha256File,
  sleep, sleepSync, subManifest, tailFile, timed, toolDefs, toolEnv, versions, writeSection, CHECKOUT,
} from './lib.mjs';

const ALL_TOOLS = ['borg', 'restic', 'cairn'];
const HELP = `usage: node bench/mount.mjs [options]

For each dataset, run and tool: drop caches, start the mount, poll until the archive root
shows, ls it (= "first ls"), find | wc -l over the archive (= walk), read VmHWM of the mount
daemon, cold then warm dd of the large file, cold cp -a of the small-files dir, unmount.

Datasets:
  (default)                the repos left by \`node bench/core.mjs --profile P\` (last archive)
  --skip-core              leave that dataset out
  --million                also a tree of --million-files tiny files in --million-dirs dirs,
                           backed up once per tool (kept in the work dir and reused)
  --million-files N        default 1000000
  --million-dirs N         default 1000
  --bigfile-mib N          also a dir holding one N MiB random file (e.g. 1024), backed up
                           once per tool; 0 = off (default)

Options:
  --large-file REL         file to read in the core dataset (default media/footage/raw-capture-0001.mov)
  --small-dir REL          dir to cp -a in the core dataset (default projects/bulk-small-files)
  --copy-to DIR            where cp -a writes its copy (default /dev/shm, a tmpfs). On this machine's
                           ext4 (no journal), creating files where files were deleted in the last
                           30 s to 5 min scans past every such inode (recently_deleted() in
                           find_inode_bit, seen with perf): the same local cp -a of the 2,005 files
                           took 0.06 to 1.24 s. The benchmark deletes each copy before the next run,
                           so a disk destination measured mostly that, for every tool alike
  --fresh-tool-cache       empty the tool's own cache dir (restic cache, borg cache, cairn cache)
                           before every mount (default: keep it, as after the backups)
  --ready-timeout S        give up waiting for a mount after S seconds (default 1800)
${COMMON_HELP}
Tools: ${ALL_TOOLS.join(', ')}`;

const o = parseOptions({
  'skip-core': { type: 'boolean', default: false },
  million: { type: 'boolean', default: false },
  'million-files': { type: 'string', default: '1000000' },
  'million-dirs': { type: 'string', default: '1000' },
  'bigfile-mib': { type: 'string', default: '0' },
  'large-file': { type: 'string', default: 'media/footage/raw-capture-0001.mov' },
  'small-dir': { type: 'string', default: 'projects/bulk-small-files' },
  'copy-to': { type: 'string', default: '/dev/shm' },
  'fresh-tool-cache': { type: 'boolean', default: false },
  'ready-timeout': { type: 'string', default: '1800' },
}, HELP);
const readyTimeoutS = posInt(o['ready-timeout'], 'ready-timeout');
const info = { start: nowIso(), ...machineInfo() };
const defs = toolDefs(o.cairnMain);
const { active, skipped, excluded } = selectTools(defs, o.tools, ALL_TOOLS);
const mountRoot = path.join(o.work, 'mount');
const mntDir = path.join(mountRoot, 'mnt');
const logDir = path.join(mountRoot, 'logs');
mkdirp(mntDir);
mkdirp(logDir);
/** cp -a copies go here, each deleted once checked; the dir itself when the benchmark exits. */
const copyRoot = fs.mkdtempSync(path.join(o['copy-to'], 'cairn-bench-copy-'));
process.on('exit', () => rmrfUnder(o['copy-to'], copyRoot));

// ------------------------------------------------------------------ unmount safety net
const live = new Map(); // mountpoint -> { env, childPid, stopArgv, pids, log }
function stopMount(mnt) {
  const s = live.get(mnt) || { pids: [] };
  const logFd = fs.openSync(s.log || '/dev/null', 'a');
  try {
    // Polite stop first: the tool's own umount, SIGINT to a foreground mount process.
    if (s.stopArgv && isMounted(mnt)) {
      spawnSync(s.stopArgv[0], s.stopArgv.slice(1), { env: s.env, stdio: ['ignore', logFd, logFd], timeout: 60000 });
    }
    if (s.childPid && pidAlive(s.childPid)) {
      process.kill(s.childPid, 'SIGINT');
      for (let i = 0; i < 150 && pidAlive(s.childPid); i++) sleepSync(100);
    }
    // Then until nothing is mounted there and no process started for this mount point is left
    // (a mount still starting up may daemonize under a new pid, so rescan every round):
    // fusermount -uz / umount -l, SIGTERM, and SIGKILL after 5 s.
    let forced = false;
    const t0 = Date.now();
    for (;;) {
      if (isMounted(mnt)) {
        forced = true;
        forceUnmount(mnt);
      }
      const pids = [...new Set([...s.pids, ...pidsWithArg(mnt), ...(s.childPid ? [s.childPid] : [])])].filter(pidAlive);
      if (!pids.length && !isMounted(mnt)) break;
      if (Date.now() - t0 > 60000) break;
      if (Date.now() - t0 > 5000) {
        for (const p of pids) { try { process.kill(p, Date.now() - t0 > 10000 ? 'SIGKILL' : 'SIGTERM'); } catch { /* gone */ } }
      }
      sleepSync(200);
    }
    live.delete(mnt);
    if (isMounted(mnt)) return 'STILL MOUNTED';
    return forced ? 'unmounted (needed fusermount -uz / umount -l)' : 'unmounted';
  } finally {
    fs.closeSync(logFd);
  }
}
function stopAll() {
  for (const mnt of [...live.keys()]) console.error(`bench: cleanup ${mnt}: ${stopMount(mnt)}`);
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { stopAll(); process.exit(130); });
process.on('uncaughtException', (e) => { console.error(e); stopAll(); process.exit(1); });
// The steps below are synchronous; a signal handler only runs when the event loop gets a turn.
// setImmediate lets one poll phase (where libuv delivers signals) pass between steps.
const checkpoint = () => new Promise((resolve) => setImmediate(resolve));

for (const m of mountsUnder(o.work)) console.log(`stale mount from an earlier run: ${m.mp} (${m.type}): ${stopMount(m.mp)}`);
for (const d of fs.readdirSync(mntDir)) {
  const mp = path.join(mntDir, d);
  if (pidsWithArg(mp).length) console.log(`stale mount processes from an earlier run for ${mp}: ${stopMount(mp)}`);
}

// ------------------------------------------------------------------ datasets
const datasets = [];
if (!o['skip-core']) datasets.push(coreDataset());
if (o.million) datasets.push(await backedUpDataset(millionSource()));
const bigMiB = posInt(o['bigfile-mib'], 'bigfile-mib', 0);
if (bigMiB) datasets.push(await backedUpDataset(bigfileSource(bigMiB)));
if (!datasets.length) die('no dataset selected');

for (const ds of datasets) {
  console.log(`\n##### dataset ${ds.title}`);
  for (let rep = 1; rep <= o.runs; rep++) {
    for (const [name, tool] of active) {
      if (!ds.repos[name]) continue;
      (ds.results[name] ||= []).push(await session(ds, name, tool, rep));
    }
  }
}

info.end = nowIso();
info.loadavgEnd = fs.readFileSync('/proc/loadavg', 'utf8').trim();
const left = mountsUnder(o.work);
const leftNote = left.length ? `MOUNTS LEFT BEHIND: ${left.map((m) => m.mp).join(', ')}` : `mounts left under ${o.work} at the end (/proc/mounts): none`;
console.log(`\n${leftNote}`);
for (const ds of datasets) {
  const md = render(ds);
  console.log(`\n${md}`);
  if (o.resultsFile) {
    writeSection(o.resultsFile, ds.key, md);
    console.log(`results section ${ds.key} written to ${o.resultsFile}`);
  }
}
const raw = saveRaw('mount', { options: o, info, skipped, datasets: datasets.map(({ smallManifest, ...d }) => d), left });
console.log(`raw results: ${raw}`);
// Non-zero exit: a mount left behind, a session that failed, or any problem with cairn's mount.
const bad = left.length || datasets.some((d) => Object.entries(d.results).some(([n, runs]) => runs.some((r) => r.failed || (n === 'cairn' && r.bad.length))));
process.exit(bad ? 1 : 0);

// ------------------------------------------------------------------
function coreDataset() {
  const base = path.join(o.work, 'core', o.profile);
  const ds = {
    key: `mount:${o.profile}`, title: `${o.profile} corpus (repos from bench/core.mjs --profile ${o.profile}, last archive)`,
    repos: {}, results: {}, notes: [], largeFile: o['large-file'], smallDir: o['small-dir'],
  };
  for (const [name] of active) {
    const f = path.join(base, 'repos', `${name}.json`);
    const st = fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : null;
    if (!st || !st.complete) {
      const why = `no complete repo from the core benchmark (${f}); run \`node bench/core.mjs --profile ${o.profile}\` first`;
      console.log(`${name}: SKIPPED for ${ds.key} — ${why}`);
      ds.notes.push(`**${name}: not measured** — ${why}`);
      continue;
    }
    ds.repos[name] = { repo: st.repo, stateDir: st.stateDir, archive: st.archives[st.archives.length - 1], prefix: st.prefix || '', date: st.date };
  }
  const mf = path.join(base, 'manifest-final.json');
  if (fs.existsSync(mf)) {
    const m = loadManifest(mf);
    const big = m.get(Buffer.from(ds.largeFile).toString('latin1'));
    if (big && big.t === 'f') Object.assign(ds, { largeSize: big.size, largeHash: big.hash });
    else die(`--large-file ${ds.largeFile} is not a file of the ${o.profile} corpus`);
    ds.smallManifest = subManifest(m, ds.smallDir);
    if (!ds.smallManifest.size) die(`--small-dir ${ds.smallDir} is empty or missing in the ${o.profile} corpus`);
    // `find | wc -l` prints the root plus one line per entry, and names holding a newline add lines.
    ds.expectedEntries = 1 + [...m.keys()].reduce((n, k) => n + 1 + (k.match(/\n/g) || []).length, 0);
  } else {
    ds.notes.push(`no source manifest (${mf}): mount contents not verified`);
  }
  return ds;
}

function millionSource() {
  const n = posInt(o['million-files'], 'million-files');
  const d = posInt(o['million-dirs'], 'million-dirs');
  const dir = path.join(o.work, 'corpus', `million-${n}x${d}`);
  const stamp = `${dir}.done.json`;
  if (!fs.existsSync(stamp)) {
    rmrf(dir);
    console.log(`generating ${n} tiny files in ${d} dirs under ${dir} …`);
    const t = performance.now();
    for (let i = 0; i < d; i++) mkdirp(path.join(dir, `d${String(i).padStart(4, '0')}`));
    for (let j = 0; j < n; j++) {
      const i = Math.floor((j * d) / n);
      const h = crypto.createHash('sha1').update(`cairn-bench-million:${j}`).digest('hex');
      fs.writeFileSync(path.join(dir, `d${String(i).padStart(4, '0')}`, `f${String(j).padStart(7, '0')}.txt`),
        `${j}\n${h.repeat(1 + (j % 5))}\n`);
    }
    fs.writeFileSync(stamp, JSON.stringify({ files: n, dirs: d, seconds: (performance.now() - t) / 1000, date: nowIso() }));
  }
  return {
    key: `mount:million-${n}x${d}`, name: `million-${n}x${d}`, dir,
    title: `${n} tiny files (~40–210 bytes each) in ${d} dirs`, smallDir: 'd0000', expectedEntries: n + d + 1,
  };
}

function bigfileSource(mib) {
  const dir = path.join(o.work, 'corpus', `bigfile-${mib}MiB`);
  const stamp = `${dir}.done.json`;
  if (!fs.existsSync(stamp)) {
    rmrf(dir);
    mkdirp(dir);
    console.log(`generating ${mib} MiB of pseudo-random bytes (AES-CTR of zeros, fixed key) in ${dir}/random.bin …`);
    const c = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
    const zero = Buffer.alloc(MiB);
    const h = crypto.createHash('sha256');
    const fd = fs.openSync(path.join(dir, 'random.bin'), 'w');
    for (let i = 0; i < mib; i++) {
      const b = c.update(zero);
      h.update(b);
      fs.writeSync(fd, b);
    }
    fs.closeSync(fd);
    fs.writeFileSync(stamp, JSON.stringify({ mib, sha256: h.digest('hex'), date: nowIso() }));
  }
  const st = JSON.parse(fs.readFileSync(stamp, 'utf8'));
  return {
    key: `mount:bigfile-${mib}MiB`, name: `bigfile-${mib}MiB`, dir, title: `one ${mib} MiB random file`,
    largeFile: 'random.bin', largeSize: mib * MiB, largeHash: st.sha256, expectedEntries: 2,
  };
}

/** Back the source up once per tool (reused on later runs); returns a dataset. */
async function backedUpDataset(srcInfo) {
  const base = path.join(mountRoot, srcInfo.name);
  const ds = { ...srcInfo, repos: {}, results: {}, notes: [], backups: {} };
  if (ds.smallDir) ds.smallManifest = manifest(path.join(ds.dir, ds.smallDir));
  for (const [name, tool] of active) {
    const repo = path.join(base, 'repos', name);
    const stateDir = path.join(base, 'state', name);
    const stateFile = path.join(base, 'repos', `${name}.json`);
    const log = path.join(logDir, `${srcInfo.name}-${name}-backup.log`);
    if (!fs.existsSync(stateFile)) {
      console.log(`${name}: backing up ${ds.dir} once (log ${log}) …`);
      rmrf(repo, stateDir);
      mkdirp(path.dirname(repo));
      const env = toolEnv(tool, stateDir);
      const steps = {};
      let ok = true;
      for (const [key, argv, cwd] of [['init', tool.init(repo)], ['create', tool.create(repo, srcInfo.name), ds.dir]]) {
        const cold = dropCaches();
        const m = timed(argv, { cwd, env, log });
        steps[key] = { ...m, cold, repoBytes: duBytes(repo) };
        console.log(`  ${key} exit ${m.exit}, wall ${fmt(m.wall)} s, cpu ${fmt(m.cpu)} s, rss ${fmt(m.rssMiB, 1)} MiB`);
        if (m.exit !== 0) {
          ok = false;
          console.log(`  FAILED; see ${log}\n${tailFile(log).replace(/^/gm, '    | ')}`);
          break;
        }
      }
      if (!ok) {
        ds.notes.push(`**${name}: not measured** — backup failed (see ${log})`);
        ds.backups[name] = { steps, failed: true };
        continue;
      }
      const archive = tool.archiveRef(repo, srcInfo.name, env);
      fs.writeFileSync(stateFile, JSON.stringify({ tool: name, repo, stateDir, archives: [archive], prefix: '', steps, date: nowIso(), complete: true }, null, 1));
    }
    const st = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    ds.repos[name] = { repo: st.repo, stateDir: st.stateDir, archive: st.archives[0], prefix: st.prefix, date: st.date };
    ds.backups[name] = { steps: st.steps, date: st.date };
  }
  return ds;
}

// ------------------------------------------------------------------ one mount session
async function session(ds, name, tool, rep) {
  const R = ds.repos[name];
  const mnt = path.join(mntDir, name);
  const log = path.join(logDir, `${ds.key.replace(/[:/]/g, '-')}-${name}-run${rep}.log`);
  const r = { rep, bad: [], failed: null };
  console.log(`\n== ${name} mount, ${ds.key}, run ${rep}/${o.runs}`);
  mkdirp(mnt);
  if (isMounted(mnt) && !forceUnmount(mnt)) throw new Error(`${mnt} is mounted and cannot be unmounted`);
  if (fs.readdirSync(mnt).length) throw new Error(`mount point ${mnt} is not empty`);
  if (o['fresh-tool-cache']) rmrf(...tool.cacheDirs(R.stateDir));
  const env = toolEnv(tool, R.stateDir);
  const argv = tool.mount.start(R.repo, mnt);
  const logFd = fs.openSync(log, 'a');
  fs.writeSync(logFd, `\n### ${nowIso()} ${argv.join(' ')}\n`);
  let pid = null;
  const daemonPid = () => {
    if (tool.mount.foreground) return child.pid;
    const ps = pidsWithArg(mnt).filter(pidAlive);
    if (!ps.length) return null;
    return ps.sort((a, b) => (procStatusKiB(b, 'VmRSS') || 0) - (procStatusKiB(a, 'VmRSS') || 0))[0];
  };
  const say = (k, v) => console.log(`  ${k.padEnd(22)} ${v}`);

  r.cold = dropCaches();
  const t0 = performance.now();
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', logFd, logFd] });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  child.on('error', (e) => { exited = { code: -1, signal: null, error: e.message }; });
  live.set(mnt, { env, childPid: tool.mount.foreground ? child.pid : null, stopArgv: tool.mount.stop ? tool.mount.stop(mnt) : null, pids: [], log });
  try {
    // 1. mount → archive root visible → first ls returns
    let dir = null;
    for (;;) {
      if (isMounted(mnt)) {
        try {
          const d = tool.mount.archiveDir(mnt, R.archive);
          if (fs.existsSync(d)) { dir = d; break; }
        } catch { /* not there yet */ }
      }
      if (exited && (exited.code !== 0 || tool.mount.foreground) && !isMounted(mnt)) {
        throw new Error(`mount command ended (${JSON.stringify(exited)}) without mounting; see ${log}`);
      }
      if (performance.now() - t0 > readyTimeoutS * 1000) throw new Error(`archive not visible after ${readyTimeoutS} s`);
      await sleep(10);
    }
    r.visible = (performance.now() - t0) / 1000;
    const root = R.prefix ? path.join(dir, R.prefix) : dir;
    const ls = spawnSync('ls', [root], { stdio: ['ignore', 'ignore', logFd], timeout: readyTimeoutS * 1000 });
    r.firstLs = (performance.now() - t0) / 1000;
    if (ls.status !== 0) r.bad.push(`ls of the archive root exited ${ls.status}`);
    say('first ls', `${fmt(r.firstLs, 3)} s (archive visible after ${fmt(r.visible, 3)} s; cache ${r.cold ? 'cold' : 'warm'})`);
    while (exited === null && !tool.mount.foreground && performance.now() - t0 < 60000) await sleep(10);
    r.mountExit = exited ? exited.code : null;
    pid = daemonPid();
    live.get(mnt).pids = pid ? [pid] : [];
    if (!pid) r.bad.push('mount daemon pid not found: no RSS/CPU figures');
    const cpu0 = pid ? procCpuS(pid) : null;

    // 2. walk
    await checkpoint();
    const w = timed(['bash', '-c', 'set -o pipefail; find "$1" | wc -l', 'find-wc', root], { env, log, stdout: 'capture' });
    r.walk = w.wall;
    r.walkCount = Number(w.stdout.trim());
    r.walkCpu = w.cpu;
    if (w.exit !== 0) r.bad.push(`find exited ${w.exit}`);
    if (ds.expectedEntries && r.walkCount !== ds.expectedEntries) r.bad.push(`walk printed ${r.walkCount} lines, expected ${ds.expectedEntries}`);
    const cpu1 = pid ? procCpuS(pid) : null;
    r.walkDaemonCpu = pid ? cpu1 - cpu0 : null;
    r.daemonCpuMountLs = cpu0;
    r.rssWalkMiB = pid ? procStatusKiB(pid, 'VmHWM') / 1024 : null;
    say('walk', `${fmt(r.walk)} s, ${r.walkCount} lines (expected ${ds.expectedEntries ?? '?'}), daemon cpu ${fmt(r.walkDaemonCpu)} s, VmHWM ${fmt(r.rssWalkMiB, 1)} MiB`);

    // 3. large file: cold, then warm read
    await checkpoint();
    if (ds.largeFile) {
      const f = path.join(root, ds.largeFile);
      const dd = () => {
        const m = timed(['bash', '-c', 'dd if="$1" of=/dev/null bs=1M 2>&1', 'dd', f], { env, log, stdout: 'capture' });
        const g = m.stdout.match(/^(\d+) bytes .* copied, ([\d.e-]+) s/m);
        m.bytes = g ? Number(g[1]) : null;
        m.ddSeconds = g ? Number(g[2]) : null;
        m.mibs = g && m.ddSeconds > 0 ? m.bytes / MiB / m.ddSeconds : null;
        if (m.exit !== 0 || (ds.largeSize != null && m.bytes !== ds.largeSize)) r.bad.push(`dd of the large file: exit ${m.exit}, ${m.bytes} bytes (expected ${ds.largeSize})`);
        return m;
      };
      const c0 = pid ? procCpuS(pid) : null;
      r.coldCached = dropCaches();
      const c = dd();
      const c1 = pid ? procCpuS(pid) : null;
      await checkpoint();
      const wm = dd();
      const c2 = pid ? procCpuS(pid) : null;
      Object.assign(r, { coldMiBs: c.mibs, coldWall: c.wall, warmMiBs: wm.mibs, warmWall: wm.wall,
        coldDaemonCpu: pid ? c1 - c0 : null, warmDaemonCpu: pid ? c2 - c1 : null });
      r.largeHashOk = ds.largeHash ? sha256File(f) === ds.largeHash : null;
      if (r.largeHashOk === false) r.bad.push('large file read through the mount differs from the source (sha256)');
      say('large file', `cold ${fmt(r.coldMiBs, 1)} MiB/s (${fmt(c.ddSeconds, 3)} s), warm ${fmt(r.warmMiBs, 1)} MiB/s (${fmt(wm.ddSeconds, 3)} s), sha256 ${r.largeHashOk === null ? 'not checked' : r.largeHashOk ? 'ok' : 'MISMATCH'}`);
    }

    // 4. cp -a of the small-files dir
    await checkpoint();
    if (ds.smallDir) {
      const dst = path.join(copyRoot, name);
      rmrfUnder(copyRoot, dst);
      mkdirp(path.dirname(dst));
      r.cpCold = dropCaches();
      const c0 = pid ? procCpuS(pid) : null;
      const c = timed(['cp', '-a', path.join(root, ds.smallDir), dst], { env, log });
      r.cp = c.wall;
      r.cpDaemonCpu = pid ? procCpuS(pid) - c0 : null;
      if (c.exit !== 0) r.bad.push(`cp -a exited ${c.exit}`);
      const got = fs.existsSync(dst) ? manifest(dst) : new Map();
      r.cpFiles = [...got.values()].filter((e) => e.t === 'f').length;
      r.cpVerify = ds.smallManifest ? compareManifests(ds.smallManifest, got) : null;
      if (r.cpVerify && !r.cpVerify.dataOk) r.bad.push(`cp -a copy: ${r.cpVerify.verdict}`);
      rmrfUnder(copyRoot, dst);
      say('cp -a', `${fmt(r.cp)} s for ${r.cpFiles} files; copy vs source: ${r.cpVerify ? r.cpVerify.verdict : 'not checked'}`);
    }
    r.rssEndMiB = pid ? procStatusKiB(pid, 'VmHWM') / 1024 : null;
    r.daemonCpuTotal = pid ? procCpuS(pid) : null;
  } catch (e) {
    r.failed = e.message;
    console.log(`  FAILED: ${e.message}\n${tailFile(log).replace(/^/gm, '    | ')}`);
  } finally {
    fs.closeSync(logFd);
    r.unmount = stopMount(mnt);
    if (r.unmount === 'STILL MOUNTED') r.bad.push(`${mnt} still mounted`);
    say('unmount', r.unmount);
  }
  return r;
}

// ------------------------------------------------------------------ report
function render(ds) {
  const names = active.map(([n]) => n).filter((n) => ds.repos[n]);
  const med = (n, f) => median((ds.results[n] || []).filter((r) => !r.failed).map(f));
  const notes = [
    `dataset: ${ds.title}; ${o.runs} run(s) per tool; medians over runs that did not fail`,
    cacheNote() || 'cold = right after `sync; echo 3 > /proc/sys/vm/drop_caches` (page cache, dentries and inodes dropped; the tools\' on-disk caches are kept unless --fresh-tool-cache): before starting the mount, before the cold read and before cp -a. The walk follows the first ls without a drop. Warm read = the same dd again right after the cold one',
    'first ls = from spawning the mount command until `ls ARCHIVE_ROOT` returns (poll every 10 ms for the archive dir: borg/cairn MOUNT/<archive>, restic MOUNT/snapshots/<target of latest>); walk = `find ARCHIVE_ROOT | wc -l` (wall); read = `dd bs=1M` to /dev/null, MiB/s from dd\'s own timing; cp -a = wall of `cp -a` of the small-files dir to ' + o['copy-to'] + ' (--copy-to); RSS = VmHWM (peak resident) of the mount daemon from /proc/PID/status after the walk and at the end; daemon CPU = user+sys of the daemon during the walk, from /proc/PID/stat',
    o['fresh-tool-cache'] ? 'the tool cache dir was emptied before every mount (--fresh-tool-cache)' : 'tool cache dirs kept from the backups (a mount on the machine that made the backups)',
    ...skipped.map(([n, why]) => `**${n}: not measured** — skipped: ${why}`),
    ...ds.notes,
    leftNote,
  ];
  const out = [headerMd(o, `Mount benchmark — ${ds.key.replace(/^mount:/, '')}`, info, versions(active), notes)];
  const rows = names.map((n) => {
    const runs = ds.results[n] || [];
    const okRuns = runs.filter((r) => !r.failed).length;
    return [n, fmt(med(n, (r) => r.firstLs), 3), fmt(med(n, (r) => r.walk)), fmt(med(n, (r) => r.walkCount), 0),
      ds.largeFile ? fmt(med(n, (r) => r.coldMiBs), 1) : '—', ds.largeFile ? fmt(med(n, (r) => r.warmMiBs), 1) : '—',
      ds.smallDir ? `${fmt(med(n, (r) => r.cp))} (${fmt(med(n, (r) => r.cpFiles), 0)} files)` : '—',
      fmt(med(n, (r) => r.rssWalkMiB), 1), fmt(med(n, (r) => r.rssEndMiB), 1), fmt(med(n, (r) => r.walkDaemonCpu)),
      `${okRuns}/${runs.length}`];
  });
  for (const [n] of skipped) rows.push([n, 'not yet measured', '', '', '', '', '', '', '', '', 'skipped']);
  for (const n of excluded) rows.push([n, 'not measured', '', '', '', '', '', '', '', '', 'not in --tools']);
  for (const n of active.map(([x]) => x).filter((x) => !ds.repos[x])) rows.push([n, 'not measured (no repo)', '', '', '', '', '', '', '', '', '—']);
  out.push(mdTable(['tool', 'first ls s', 'walk s', 'find lines', 'cold read MiB/s', 'warm read MiB/s', 'cp -a s', 'RSS after walk MiB', 'RSS at end MiB', 'daemon CPU walk s', 'ok runs'], rows), '');
  out.push('Ratios (times and RSS: < 1 means cairn is faster/smaller; read throughput: > 1 means cairn is faster):\n');
  out.push(ratioTable([['cairn', 'borg'], ['cairn', 'restic']].map(([a, b]) => [a, b, med]), names, [
    ['first ls', (r) => r.firstLs], ['walk', (r) => r.walk],
    ...(ds.largeFile ? [['cold read MiB/s', (r) => r.coldMiBs], ['warm read MiB/s', (r) => r.warmMiBs]] : []),
    ...(ds.smallDir ? [['cp -a', (r) => r.cp]] : []), ['RSS after walk', (r) => r.rssWalkMiB]]), '');
  out.push('Per run (verification: `find | wc -l` vs the source (root + entries + newlines inside names); large file sha256 via the mount; cp -a copy vs source; unmount):\n');
  const vrows = [];
  for (const n of names) {
    for (const r of ds.results[n] || []) {
      const problems = r.failed ? [`FAILED: ${r.failed}`, ...r.bad] : r.bad;
      vrows.push([n, String(r.rep), fmt(r.firstLs, 3), fmt(r.walk), ds.largeFile ? `${fmt(r.coldMiBs, 1)} / ${fmt(r.warmMiBs, 1)}` : '—',
        ds.largeFile ? (r.largeHashOk === null || r.largeHashOk === undefined ? 'not checked' : r.largeHashOk ? 'ok' : 'MISMATCH') : '—',
        ds.smallDir ? (r.cpVerify ? r.cpVerify.verdict : 'not checked') : '—', r.unmount || '?', problems.length ? problems.join('; ') : 'none']);
    }
  }
  out.push(mdTable(['tool', 'run', 'first ls s', 'walk s', 'cold / warm MiB/s', 'large file sha256', 'cp -a copy vs source', 'unmount', 'problems'], vrows, 'lrrrrllll'), '');
  if (ds.backups) {
    out.push('One-time backup of this dataset (cold, `/usr/bin/time`; reused by later runs until its repo is deleted):\n');
    const brows = Object.entries(ds.backups).map(([n, b]) => {
      const c = (b.steps || {}).create || {};
      return [n, fmt(c.wall), fmt(c.cpu), fmt(c.rssMiB, 1), fmt(c.repoBytes != null ? c.repoBytes / MiB : null, 1), b.failed ? 'FAILED' : `ok (${b.date})`];
    });
    out.push(mdTable(['tool', 'create wall s', 'CPU s', 'peak RSS MiB', 'repo MiB', 'status'], brows), '');
  }
  out.push(`Mount commands: ${[...names, ...skipped.map(([x]) => x), ...excluded].map((n) => {
    const m = defs[n].mount;
    const show = (v) => v.map((x) => (x === process.execPath ? 'node' : x === o.cairnMain ? path.relative(CHECKOUT, x) : x)).join(' ');
    return `${n}: \`${show(m.start('REPO', 'MNT'))}\` … ${m.stop ? `\`${show(m.stop('MNT'))}\`` : 'SIGINT to the foreground process'}, then \`fusermount -uz MNT\` / \`umount -l MNT\` if still mounted`;
  }).join('; ')}`, '');
  return out.join('\n');
}
