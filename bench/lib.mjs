// Shared helpers for bench/core.mjs and bench/mount.mjs (plain Node >= 20 ESM, no dependencies).
//
// Everything the benchmarks create lives under the work dir (default /var/tmp/cairn-bench,
// override with --work DIR or CAIRN_BENCH_DIR); nothing is written inside the checkout except
// the results file (bench/RESULTS.md by default).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const CHECKOUT = path.resolve(BENCH_DIR, '..');
export const MiB = 1024 * 1024;
export const PASSPHRASE = 'cairn-bench-passphrase';
const SLASH = Buffer.from('/');

// ------------------------------------------------------------------ options
export const COMMON_OPTIONS = {
  work: { type: 'string' },
  profile: { type: 'string', default: 'medium' },
  seed: { type: 'string', default: '1' },
  runs: { type: 'string', default: '3' },
  tools: { type: 'string' },
  results: { type: 'string' },
  cairn: { type: 'string' },
  'corpus-gen': { type: 'string' },
  'no-drop-caches': { type: 'boolean', default: false },
  'timeout': { type: 'string', default: '7200' },
  help: { type: 'boolean', short: 'h', default: false },
};

export const COMMON_HELP = `Common options:
  --profile small|medium   corpus profile of make-corpus.py (default medium)
  --seed N                 corpus seed (default 1)
  --runs N                 repetitions per tool; tables show medians (default 3)
  --tools a,b,...          subset of the tools (default: all of them)
  --work DIR               work dir, must be outside the checkout
                           (default $CAIRN_BENCH_DIR or /var/tmp/cairn-bench)
  --results FILE           markdown file whose generated section is replaced
                           (default bench/RESULTS.md; 'none' to only print)
  --cairn PATH             the cairn command (default <checkout>/cli/cairn, the launcher
                           npm installs as \`cairn\`, or $CAIRN_BENCH_CAIRN); a .js path is run
                           with this node; a missing file skips cairn
  --corpus-gen PATH        make-corpus.py (default <checkout>/../shared/bench/make-corpus.py,
                           then /work/shared/bench/make-corpus.py)
  --no-drop-caches         never drop the page cache (all figures become warm)
  --timeout S              kill any single timed command after S seconds (default 7200)`;

export const CFG = { work: null, dropCaches: true, dropFailed: false, timeoutS: 7200, seq: 0 };

export function parseOptions(extra, help) {
  let parsed;
  try {
    parsed = parseArgs({ options: { ...COMMON_OPTIONS, ...extra }, allowPositionals: false, strict: true });
  } catch (e) {
    console.error(`${e.message}\n\n${help}`);
    process.exit(2);
  }
  const o = parsed.values;
  if (o.help) {
    console.log(help);
    process.exit(0);
  }
  o.runs = posInt(o.runs, 'runs');
  o.seed = posInt(o.seed, 'seed', 0);
  if (!['small', 'medium'].includes(o.profile)) die(`--profile must be small or medium, not ${o.profile}`);
  const work = path.resolve(o.work || process.env.CAIRN_BENCH_DIR || '/var/tmp/cairn-bench');
  if (work === CHECKOUT || work.startsWith(CHECKOUT + path.sep) || CHECKOUT.startsWith(work + path.sep)) {
    die(`work dir ${work} overlaps the checkout ${CHECKOUT}; pick one outside it`);
  }
  CFG.work = work;
  CFG.dropCaches = !o['no-drop-caches'];
  CFG.timeoutS = posInt(o.timeout, 'timeout');
  o.work = work;
  o.resultsFile = o.results === 'none' ? null : path.resolve(o.results || path.join(BENCH_DIR, 'RESULTS.md'));
  o.cairnMain = path.resolve(o.cairn || process.env.CAIRN_BENCH_CAIRN || path.join(CHECKOUT, 'cli/cairn'));
  o.corpusGen = o['corpus-gen'] || [path.resolve(CHECKOUT, '../shared/bench/make-corpus.py'),
    '/work/shared/bench/make-corpus.py'].find((p) => fs.existsSync(p));
  o.commandLine = ['node', path.relative(process.cwd(), process.argv[1]) || process.argv[1],
    ...process.argv.slice(2)].map(shq).join(' ');
  mkdirp(work);
  mkdirp(path.join(work, 'tmp'));
  lockWork(work);
  return o;
}

/** One harness at a time per work dir (they must also run alone on the machine). */
function lockWork(work) {
  const lock = path.join(work, 'bench.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      process.on('exit', () => {
        try { if (fs.readFileSync(lock, 'utf8').trim() === String(process.pid)) fs.rmSync(lock); } catch { /* gone */ }
      });
      return;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const pid = Number(fs.readFileSync(lock, 'utf8').trim());
      if (pid && pidAlive(pid)) die(`another benchmark (pid ${pid}) is using ${work}; ${lock}`);
      fs.rmSync(lock, { force: true }); // stale
    }
  }
  die(`cannot take ${lock}`);
}

export function posInt(v, name, min = 1) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) die(`--${name} must be an integer >= ${min}, not ${v}`);
  return n;
}

export function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

// ------------------------------------------------------------------ small utils
export function shq(s) {
  s = String(s);
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function mkdirp(p) {
  fs.mkdirSync(p, { recursive: true });
}

/** rm -rf, refusing anything outside the work dir. (fs.rmSync mangles non-UTF-8 names.) */
export function rmrf(...paths) {
  rmrfUnder(CFG.work, ...paths);
}

/** rm -rf, refusing anything outside `root`. */
export function rmrfUnder(root, ...paths) {
  for (const p of paths) {
    const abs = path.resolve(p);
    if (!abs.startsWith(path.resolve(root) + path.sep)) throw new Error(`refusing to delete ${abs}: outside ${root}`);
    const r = spawnSync('rm', ['-rf', '--one-file-system', abs], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`rm -rf ${abs} failed: ${r.stderr}`);
  }
}

export function sh(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 256 * MiB, ...opts });
  return { ok: r.status === 0, status: r.status, out: (r.stdout || '').trim(), err: (r.stderr || '').trim() };
}

export function which(bin) {
  return sh(['sh', '-c', 'command -v "$1"', 'sh', bin]).out || null;
}

export function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function fmt(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return x.toFixed(digits);
}

export function ratio(a, b) {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return a / b;
}

export function duBytes(p) {
  const r = sh(['du', '-sb', p]);
  return r.ok ? Number(r.out.split(/\s+/)[0]) : null;
}

export function nowIso() {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

// ------------------------------------------------------------------ page cache
let dropWarned = false;
/** sync + drop the page cache, dentries and inodes. Returns true when the caches were dropped. */
export function dropCaches() {
  if (!CFG.dropCaches) return false;
  spawnSync('sync');
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch (e) {
    CFG.dropFailed = true;
    if (!dropWarned) console.error(`bench: WARNING cannot drop caches (${e.code}); figures are warm`);
    dropWarned = true;
    return false;
  }
}

export function cacheNote() {
  if (!CFG.dropCaches) return 'page cache NOT dropped (--no-drop-caches): all figures are warm';
  if (CFG.dropFailed) return 'dropping the page cache FAILED: all figures are warm';
  return null;
}

// ------------------------------------------------------------------ timed commands
/**
 * Run argv under `timeout … /usr/bin/time -f '%e %U %S %M'`.
 * stdout: 'log' (append to log), 'null' (/dev/null) or 'capture' (returned as .stdout).
 * Returns { exit, wall, user, sys, cpu, rssKiB, rssMiB, stdout }.
 */
export function timed(argv, { cwd, env, log, stdout = 'log', timeoutS = CFG.timeoutS } = {}) {
  const tf = path.join(CFG.work, 'tmp', `time-${process.pid}-${CFG.seq++}`);
  const cf = path.join(CFG.work, 'tmp', `out-${process.pid}-${CFG.seq++}`);
  const logFd = fs.openSync(log || '/dev/null', 'a');
  fs.writeSync(logFd, `\n### ${nowIso()}  ${cwd ? `(cd ${shq(cwd)} && ` : ''}${argv.map(shq).join(' ')}${cwd ? ')' : ''}\n`);
  const outFd = stdout === 'null' ? fs.openSync('/dev/null', 'w') : stdout === 'capture' ? fs.openSync(cf, 'w') : logFd;
  const full = ['timeout', '-k', '30', String(timeoutS), '/usr/bin/time', '-f', '%e %U %S %M', '-o', tf, ...argv];
  const r = spawnSync(full[0], full.slice(1), { cwd, env, stdio: ['ignore', outFd, logFd] });
  if (outFd !== logFd) fs.closeSync(outFd);
  let res = { exit: r.status ?? -1, wall: null, user: null, sys: null, cpu: null, rssKiB: null, rssMiB: null };
  if (r.status === 124) res.timedOut = true;
  try {
    const lines = fs.readFileSync(tf, 'utf8').trim().split('\n');
    const [e, u, s, m] = lines[lines.length - 1].trim().split(/\s+/).map(Number);
    if ([e, u, s, m].every(Number.isFinite)) {
      Object.assign(res, { wall: e, user: u, sys: s, cpu: +(u + s).toFixed(2), rssKiB: m, rssMiB: m / 1024 });
    }
    fs.rmSync(tf);
  } catch { /* time output missing: exit code says why */ }
  if (stdout === 'capture') {
    res.stdout = fs.readFileSync(cf, 'utf8');
    fs.rmSync(cf);
  }
  fs.writeSync(logFd, `### exit ${res.exit}${res.timedOut ? ' (TIMED OUT)' : ''}, wall ${res.wall} s, cpu ${res.cpu} s, maxrss ${res.rssKiB} KiB\n`);
  fs.closeSync(logFd);
  return res;
}

export function tailFile(p, n = 8) {
  try {
    return fs.readFileSync(p, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

// ------------------------------------------------------------------ tools
/**
 * Tool definitions. Every tool backs up '.' from inside the source dir, so archive
 * paths are relative to the source root. `st` is the tool's private state dir
 * (caches, config, keys) under the work dir.
 */
export function toolDefs(cairnMain) {
  const borg = (compression) => ({
    kind: 'borg',
    label: `borg ${compression}`,
    settings: `init --encryption repokey-blake2; create --compression ${compression}`,
    available: () => (which('borg') ? null : 'borg not found in PATH'),
    version: () => sh(['borg', '--version']).out,
    env: (st) => ({
      BORG_BASE_DIR: `${st}/base`, BORG_CACHE_DIR: `${st}/cache`, BORG_CONFIG_DIR: `${st}/config`,
      BORG_SECURITY_DIR: `${st}/security`, BORG_KEYS_DIR: `${st}/keys`, BORG_PASSPHRASE: PASSPHRASE,
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    }),
    cacheDirs: (st) => [`${st}/cache`],
    init: (repo) => ['borg', 'init', '--encryption', 'repokey-blake2', repo],
    create: (repo, name) => ['borg', 'create', '--compression', compression, `${repo}::${name}`, '.'],
    archiveRef: (repo, name) => ({ name }),
    list: (repo, a) => ['borg', 'list', `${repo}::${a.name}`],
    extract: (repo, a, dest) => ({ argv: ['borg', 'extract', `${repo}::${a.name}`], cwd: dest }),
    mount: {
      start: (repo, mnt) => ['borg', 'mount', repo, mnt],
      foreground: false,
      archiveDir: (mnt, a) => path.join(mnt, a.name),
      stop: (mnt) => ['borg', 'umount', mnt],
    },
  });
  // Run as a user runs it: the launcher (which starts node with its flags), or a .js entry point with this node.
  const cairn = (...args) => (cairnMain.endsWith('.js') ? [process.execPath, cairnMain, ...args] : [cairnMain, ...args]);
  const built = cairnMain.endsWith('.js') ? cairnMain : path.resolve(path.dirname(cairnMain), '../dist/cli/main.js');
  return {
    borg: borg('zstd,3'),
    'borg-lz4': { ...borg('lz4'), mount: null },
    restic: {
      kind: 'restic',
      label: 'restic (default: repo v2, --compression auto)',
      settings: 'init (repository version "stable" = 2 in 0.14); backup with default --compression auto',
      available: () => (which('restic') ? null : 'restic not found in PATH'),
      version: () => sh(['restic', 'version']).out,
      env: (st) => ({ RESTIC_PASSWORD: PASSPHRASE, RESTIC_CACHE_DIR: `${st}/cache` }),
      cacheDirs: (st) => [`${st}/cache`],
      init: (repo) => ['restic', '-r', repo, 'init'],
      create: (repo, name) => ['restic', '-r', repo, 'backup', '--tag', name, '.'],
      archiveRef: (repo, name, env) => {
        const r = sh(['restic', '-r', repo, 'snapshots', '--json', '--tag', name], { env });
        const snaps = JSON.parse(r.out || '[]');
        if (!snaps.length) throw new Error(`restic: no snapshot tagged ${name}: ${r.err}`);
        const s = snaps[snaps.length - 1];
        return { name, id: s.id, time: s.time };
      },
      list: (repo, a) => ['restic', '-r', repo, 'ls', a.id],
      extract: (repo, a, dest) => ({ argv: ['restic', '-r', repo, 'restore', a.id, '--target', dest] }),
      mount: {
        start: (repo, mnt) => ['restic', '-r', repo, 'mount', mnt],
        foreground: true,
        // MNT/snapshots/<time>/...; 'latest' points at the newest snapshot (the one measured).
        archiveDir: (mnt) => {
          const t = fs.readlinkSync(path.join(mnt, 'snapshots', 'latest'));
          return path.join(mnt, 'snapshots', t);
        },
        stop: null, // SIGINT to the foreground process, then fusermount -uz
      },
    },
    cairn: {
      kind: 'cairn',
      label: 'cairn zstd,3',
      settings: 'init --encryption repokey; create --compression zstd,3',
      available: () => (fs.existsSync(cairnMain) && fs.existsSync(built)
        ? null : `${fs.existsSync(cairnMain) ? built : cairnMain} not found (build it: npm ci, or npm run build)`),
      version: () => {
        const r = sh(cairn('--version'), { timeout: 20000 });
        return r.ok ? r.out : `(cairn --version failed: ${(r.err || r.out).split('\n')[0]})`;
      },
      env: (st) => ({ CAIRN_PASSPHRASE: PASSPHRASE, CAIRN_CACHE_DIR: `${st}/cache`, CAIRN_CONFIG_DIR: `${st}/config` }),
      cacheDirs: (st) => [`${st}/cache`],
      init: (repo) => cairn('init', '--encryption', 'repokey', repo),
      create: (repo, name) => cairn('create', '--compression', 'zstd,3', `${repo}::${name}`, '.'),
      archiveRef: (repo, name) => ({ name }),
      list: (repo, a) => cairn('list', `${repo}::${a.name}`),
      extract: (repo, a, dest) => ({ argv: cairn('extract', `${repo}::${a.name}`), cwd: dest }),
      mount: {
        start: (repo, mnt) => cairn('mount', repo, mnt),
        foreground: false,
        archiveDir: (mnt, a) => path.join(mnt, a.name),
        stop: (mnt) => cairn('umount', mnt),
      },
    },
  };
}

/** Environment for every tool command: caches, config and HOME all inside the work dir. */
export function toolEnv(tool, st) {
  const home = path.join(CFG.work, 'home');
  mkdirp(home);
  mkdirp(st);
  return {
    ...process.env,
    HOME: home, XDG_CACHE_HOME: path.join(home, '.cache'), XDG_CONFIG_HOME: path.join(home, '.config'),
    LC_ALL: 'C.UTF-8', TZ: 'UTC',
    ...tool.env(st),
  };
}

/** Pick the tools to run; returns { active: [[name, def]], skipped: [[name, reason]], excluded: [name] (not in --tools) }. */
export function selectTools(defs, wanted, all) {
  const names = wanted ? wanted.split(',').map((s) => s.trim()).filter(Boolean) : all;
  const active = [];
  const skipped = [];
  for (const n of names) {
    if (!defs[n]) die(`unknown tool ${n}; known: ${all.join(', ')}`);
    const why = defs[n].available();
    if (why) {
      skipped.push([n, why]);
      console.log(`${n}: SKIPPED — ${why}`);
    } else active.push([n, defs[n]]);
  }
  const excluded = all.filter((n) => !names.includes(n));
  return { active, skipped, excluded };
}

// ------------------------------------------------------------------ corpus
/** Generate (once) and return the pristine corpus dir; refuses to use a corpus whose stats changed. */
export function ensureCorpus(o) {
  const dir = path.join(o.work, 'corpus', `${o.profile}-seed${o.seed}`);
  const statsFile = `${dir}.stats.json`;
  const genFile = `${dir}.gen.json`;
  if (!o.corpusGen) die('make-corpus.py not found; pass --corpus-gen PATH');
  if (!fs.existsSync(statsFile)) {
    if (fs.existsSync(dir)) {
      console.log(`corpus ${dir} has no stats file (interrupted generation?): regenerating`);
      rmrf(dir);
    }
    mkdirp(path.dirname(dir));
    console.log(`generating corpus: python3 ${o.corpusGen} ${dir} --profile ${o.profile} --seed ${o.seed}`);
    const g = sh(['python3', o.corpusGen, dir, '--profile', o.profile, '--seed', String(o.seed)]);
    if (!g.ok) die(`corpus generation failed: ${g.err}`);
    fs.writeFileSync(genFile, g.out + '\n');
    const s = sh(['python3', o.corpusGen, dir, '--stats']);
    if (!s.ok) die(`corpus --stats failed: ${s.err}`);
    fs.writeFileSync(statsFile, s.out + '\n');
  }
  const stats = JSON.parse(fs.readFileSync(statsFile, 'utf8'));
  const now = sh(['python3', o.corpusGen, dir, '--stats']);
  if (!now.ok || JSON.stringify(JSON.parse(now.out)) !== JSON.stringify(stats)) {
    die(`pristine corpus ${dir} no longer matches ${statsFile}; delete both to regenerate`);
  }
  const gen = fs.existsSync(genFile) ? JSON.parse(fs.readFileSync(genFile, 'utf8')) : null;
  return { dir, stats, gen };
}

// ------------------------------------------------------------------ manifests
function hashFile(p) {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(p, 'r');
  const buf = Buffer.allocUnsafe(4 * MiB);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (!n) break;
      h.update(n === buf.length ? buf : buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

export function sha256File(p) {
  return hashFile(p);
}

/**
 * Walk a tree without following symlinks, byte-exact names (non-UTF-8 safe).
 * Returns Map<relpath as latin1 string, entry>; the root itself is not included.
 * entry: { t: f|d|l|o, mode, uid, gid, mtime (ns string), size, hash, target, hl }
 * hl = smallest path of the in-tree hardlink group (files with nlink > 1 only).
 */
export function manifest(root, { hash = true } = {}) {
  const rootB = Buffer.from(root);
  const m = new Map();
  const byIno = new Map();
  const stack = [Buffer.alloc(0)];
  while (stack.length) {
    const rel = stack.pop();
    const abs = rel.length ? Buffer.concat([rootB, SLASH, rel]) : rootB;
    for (const nm of fs.readdirSync(abs, { encoding: 'buffer' })) {
      const r = rel.length ? Buffer.concat([rel, SLASH, nm]) : nm;
      const p = Buffer.concat([rootB, SLASH, r]);
      const st = fs.lstatSync(p, { bigint: true });
      const key = r.toString('latin1');
      const e = { t: 'o', mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: st.mtimeNs.toString() };
      if (st.isDirectory()) {
        e.t = 'd';
        stack.push(r);
      } else if (st.isFile()) {
        e.t = 'f';
        e.size = Number(st.size);
        if (hash) e.hash = hashFile(p);
        if (st.nlink > 1n) {
          const ino = st.ino.toString();
          if (!byIno.has(ino)) byIno.set(ino, []);
          byIno.get(ino).push(key);
        }
      } else if (st.isSymbolicLink()) {
        e.t = 'l';
        e.target = fs.readlinkSync(p, { encoding: 'buffer' }).toString('latin1');
      }
      m.set(key, e);
    }
  }
  for (const keys of byIno.values()) {
    if (keys.length < 2) continue;
    const first = keys.sort()[0];
    for (const k of keys) m.get(k).hl = first;
  }
  return m;
}

export function saveManifest(m, file) {
  fs.writeFileSync(file, JSON.stringify([...m]));
}

export function loadManifest(file) {
  return new Map(JSON.parse(fs.readFileSync(file, 'utf8')));
}

/** Sub-manifest of the entries below `prefix` (a relative path), re-rooted at prefix, hardlink groups recomputed. */
export function subManifest(m, prefix) {
  const pre = Buffer.from(prefix).toString('latin1') + '/';
  const out = new Map();
  const groups = new Map();
  for (const [k, e] of m) {
    if (!k.startsWith(pre)) continue;
    const key = k.slice(pre.length);
    const { hl, ...rest } = e;
    out.set(key, rest);
    if (hl) {
      if (!groups.has(hl)) groups.set(hl, []);
      groups.get(hl).push(key);
    }
  }
  for (const keys of groups.values()) {
    if (keys.length < 2) continue;
    const first = keys.sort()[0];
    for (const k of keys) out.get(k).hl = first;
  }
  return out;
}

/** Printable form of a latin1-keyed path: UTF-8 where valid, \xNN otherwise; long paths shortened. */
export function showPath(key) {
  const b = Buffer.from(key, 'latin1');
  let s = b.toString('utf8');
  if (Buffer.from(s, 'utf8').compare(b) !== 0) s = [...b].map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
  s = s.replace(/\n/g, '\\n');
  return s.length > 100 ? `${s.slice(0, 40)}…(${b.length} bytes)…${s.slice(-40)}` : s;
}

export const DATA_CATS = ['missing', 'extra', 'type', 'content', 'symlink-target'];

/** Compare expected vs actual manifests; checks = which metadata to compare. */
export function compareManifests(exp, act, checks = { mode: true, owner: true, mtime: true, hardlinks: true }) {
  const counts = {};
  const examples = {};
  const add = (cat, key) => {
    counts[cat] = (counts[cat] || 0) + 1;
    (examples[cat] ||= []).length < 3 && examples[cat].push(showPath(key));
  };
  const typeName = { f: 'file', d: 'dir', l: 'symlink', o: 'other' };
  for (const [k, e] of exp) {
    const a = act.get(k);
    if (!a) { add('missing', k); continue; }
    if (a.t !== e.t) { add('type', k); continue; }
    if (e.t === 'f' && (a.size !== e.size || (e.hash && a.hash && a.hash !== e.hash))) add('content', k);
    if (e.t === 'l' && a.target !== e.target) add('symlink-target', k);
    if (checks.hardlinks && e.t === 'f' && (e.hl || a.hl) && !sameHardlinkGroup(exp, act, k)) add('hardlink', k);
    if (checks.mode && e.t !== 'l' && a.mode !== e.mode) add('mode', k);
    if (checks.owner && (a.uid !== e.uid || a.gid !== e.gid)) add('owner', k);
    if (checks.mtime && a.mtime !== e.mtime) add(`mtime-${typeName[e.t]}`, k);
  }
  for (const k of act.keys()) if (!exp.has(k)) add('extra', k);
  const dataBad = DATA_CATS.some((c) => counts[c]);
  const anyBad = Object.keys(counts).length > 0;
  const detail = Object.entries(counts).map(([c, n]) => `${c} ${n} (e.g. ${examples[c].map((x) => JSON.stringify(x)).join(', ')})`).join('; ');
  const verdict = !anyBad ? `OK (${exp.size} entries identical)` : dataBad ? `MISMATCH: ${detail}` : `data OK (${exp.size} entries); metadata differs: ${detail}`;
  return { ok: !anyBad, dataOk: !dataBad, counts, examples, verdict, entries: exp.size };
}

function sameHardlinkGroup(exp, act, k) {
  // Two paths share an inode in the source iff they share one in the copy: compare canonical groups.
  const e = exp.get(k).hl || k;
  const a = act.get(k).hl || k;
  return e === a;
}

// ------------------------------------------------------------------ mounts
export function mountsUnder(dir) {
  const out = [];
  for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 3) continue;
    const mp = f[1].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (mp === dir || mp.startsWith(dir + '/')) out.push({ mp, type: f[2] });
  }
  return out;
}

export function isMounted(mnt) {
  return mountsUnder(mnt).some((m) => m.mp === mnt);
}

/** fusermount -uz, then umount -l; returns true when nothing is mounted there any more. */
export function forceUnmount(mnt) {
  for (const argv of [['fusermount', '-uz', mnt], ['umount', '-l', mnt]]) {
    if (!isMounted(mnt)) return true;
    spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', timeout: 30000 });
  }
  return !isMounted(mnt);
}

export function pidAlive(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids whose command line has `arg` as one of its arguments (excluding this process). */
export function pidsWithArg(arg) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const args = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (args.includes(arg) && pidAlive(d)) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

export function procStatusKiB(pid, field) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

const CLK_TCK = Number(sh(['getconf', 'CLK_TCK']).out) || 100;
/** user+sys CPU seconds of a live process (all threads). */
export function procCpuS(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ environment report
export function machineInfo() {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) || [])[1] || '?';
  return {
    nproc: sh(['nproc']).out,
    cpu,
    kernel: sh(['uname', '-r']).out,
    freeG: spawnSync('free', ['-g'], { encoding: 'utf8' }).stdout.trimEnd(),
    workFs: sh(['findmnt', '-T', CFG.work, '-n', '-o', 'FSTYPE,SOURCE']).out,
    loadavg: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
  };
}

export function versions(active, extra = {}) {
  const v = { node: process.version, python3: sh(['python3', '--version']).out, ...extra };
  for (const [n, t] of active) v[n] = t.version();
  const g = sh(['git', '-C', CHECKOUT, 'rev-parse', '--short', 'HEAD']);
  v['cairn checkout'] = g.ok ? `${g.out}${sh(['git', '-C', CHECKOUT, 'status', '--porcelain']).out ? ' (dirty tree)' : ''}` : '(not a git checkout)';
  return v;
}

export function headerMd(o, title, info, vers, notes = []) {
  const free = info.freeG.split('\n').map((l) => `    ${l}`).join('\n');
  return [
    `## ${title}`,
    '',
    `- command: \`${o.commandLine}\` (from ${shq(process.cwd())})`,
    `- date: ${info.start} → ${info.end}`,
    `- machine: nproc ${info.nproc}, ${info.cpu}, kernel ${info.kernel}, work dir ${CFG.work} on ${info.workFs}`,
    `- load average at start / end: ${info.loadavg} / ${info.loadavgEnd}`,
    `- versions: ${Object.entries(vers).map(([k, v]) => `${k}: ${String(v).split('\n')[0]}`).join('; ')}`,
    ...notes.map((n) => `- ${n}`),
    '- `free -g`:',
    '',
    free,
    '',
  ].join('\n');
}

/** Markdown table; align: string of l/r per column (default: first column left, the rest right). */
export function mdTable(head, rows, align = null) {
  const al = (i) => ((align ? align[i] : i ? 'r' : 'l') === 'r' ? '---:' : '---');
  return [`| ${head.join(' | ')} |`, `| ${head.map((h, i) => al(i)).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Replace (or append) the section between the markers for `key` in the results file. */
export function writeSection(file, key, md) {
  const begin = `<!-- bench:${key} BEGIN -->`;
  const end = `<!-- bench:${key} END -->`;
  const block = `${begin}\n${md.trim()}\n${end}`;
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + block + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(file, text);
}

export function saveRaw(name, data) {
  const dir = path.join(CFG.work, 'results');
  mkdirp(dir);
  const f = path.join(dir, `${name}-${nowIso().replace(/[:]/g, '')}.json`);
  fs.writeFileSync(f, JSON.stringify(data, null, 1));
  return f;
}

/**
 * Ratio table a/b of medians. pairs: [[a, b, get(tool, f) -> median]]; ran: tools that ran;
 * metrics: [[label, f]]. Pairs with a tool that did not run become one "not yet measured" line.
 */
export function ratioTable(pairs, ran, metrics) {
  const rows = [];
  const missing = [];
  const absent = new Set();
  for (const [a, b, get] of pairs) {
    if (!ran.includes(a) || !ran.includes(b)) {
      missing.push(`${a}/${b}`);
      for (const t of [a, b]) if (!ran.includes(t)) absent.add(t);
      continue;
    }
    rows.push([`${a}/${b}`, ...metrics.map(([, f]) => fmt(ratio(get(a, f), get(b, f))))]);
  }
  const parts = [];
  if (rows.length) parts.push(mdTable(['ratio', ...metrics.map(([l]) => l)], rows));
  if (missing.length) parts.push(`Ratios ${missing.join(', ')}: not yet measured (${[...absent].join(', ')} not run).`);
  return parts.join('\n\n');
}
