#!/usr/bin/env node
// Core benchmark: init, first create, unchanged create, create after --mutate, extract, list,
// for borg (zstd,3 and lz4), restic and cairn. See bench/RESULTS.md for what each figure means.
import fs from 'node:fs';
import path from 'node:path';
import {
  CFG, COMMON_HELP, cacheNote, compareManifests, dropCaches, duBytes, ensureCorpus, fmt, headerMd,
  machineInfo, manifest, mdTable, ratioTable, median, mkdirp, nowIso, parseOptions, ratio, rmrf, saveManifest,
  saveRaw, selectTools, sh, tailFile, timed, toolDefs, toolEnv, versions, writeSection, MiB, CHECKOUT,
} from './lib.mjs';

const ALL_TOOLS = ['borg', 'borg-lz4', 'restic', 'cairn'];
const HELP = `usage: node bench/core.mjs [options]

Runs, for each tool and each repetition, in a fresh repo on a fresh copy of the corpus:
init, create (first), create (unchanged), make-corpus --mutate, create (mutated),
extract of the last archive (verified against the source), list of the last archive.

Options:
  --mutate-seed N          seed of make-corpus.py --mutate (default 2)
  --keep-restore           keep the restored trees (default: deleted after verification)
${COMMON_HELP}
Tools: ${ALL_TOOLS.join(', ')}`;

const STEPS = [
  ['init', 'init'],
  ['create1', 'first create'],
  ['create2', 'unchanged create (same tree again)'],
  ['create3', 'create after --mutate'],
  ['extract', 'extract (full restore of the last archive into an empty dir)'],
  ['list', 'list (items of the last archive, stdout to /dev/null)'],
];
const REPO_STEPS = new Set(['init', 'create1', 'create2', 'create3']);

const o = parseOptions({
  'mutate-seed': { type: 'string', default: '2' },
  'keep-restore': { type: 'boolean', default: false },
}, HELP);
const mutateSeed = Number(o['mutate-seed']);
const info = { start: nowIso(), ...machineInfo() };
const defs = toolDefs(o.cairnMain);
const { active, skipped, excluded } = selectTools(defs, o.tools, ALL_TOOLS);
if (!active.length) {
  console.error('bench: no tool to run');
  process.exit(1);
}

const corpus = ensureCorpus(o);
const freeBytes = Number(sh(['df', '-B1', '--output=avail', o.work]).out.split('\n').pop());
const needBytes = corpus.stats.bytes_allocated * 3 + corpus.stats.bytes_apparent * (active.length + 0.5);
if (freeBytes < needBytes) {
  console.log(`WARNING: ${(freeBytes / 2 ** 30).toFixed(1)} GiB free in ${o.work}; this run may need about ${(needBytes / 2 ** 30).toFixed(1)} GiB`);
}
const base = path.join(o.work, 'core', o.profile);
const src = path.join(base, 'src');
for (const d of ['repos', 'state', 'restore', 'logs']) mkdirp(path.join(base, d));
console.log(`core benchmark: profile ${o.profile}, ${o.runs} run(s), tools ${active.map(([n]) => n).join(', ')}`);
console.log(`corpus ${corpus.dir}: ${corpus.stats.files} files, ${(corpus.stats.bytes_apparent / MiB).toFixed(1)} MiB`);
console.log(`work dir ${base}; logs in ${path.join(base, 'logs')}`);

const results = {}; // tool -> [run] ; run = { steps: {step: measurement}, verify, failed }
let mutateStats = null;

for (let rep = 1; rep <= o.runs; rep++) {
  for (const [name, tool] of active) {
    (results[name] ||= []).push(runSequence(name, tool, rep));
  }
}
rmrf(src);
info.end = nowIso();
info.loadavgEnd = fs.readFileSync('/proc/loadavg', 'utf8').trim();

const md = render();
console.log(`\n${md}`);
const raw = saveRaw(`core-${o.profile}`, { options: o, info, corpus, mutateStats, skipped, results });
console.log(`raw results: ${raw}`);
if (o.resultsFile) {
  writeSection(o.resultsFile, `core:${o.profile}`, md);
  console.log(`results section core:${o.profile} written to ${o.resultsFile}`);
}
// Non-zero exit: a step failed, or cairn's restore differs in data. Another tool's mismatch is a
// finding about that tool: reported in the table, not a harness failure.
const anyFail = Object.entries(results).some(([n, runs]) => runs.some((r) => r.failed || (n === 'cairn' && r.verify && !r.verify.dataOk)));
process.exit(anyFail ? 1 : 0);

// ------------------------------------------------------------------
function runSequence(name, tool, rep) {
  const repo = path.join(base, 'repos', name);
  const st = path.join(base, 'state', name);
  const dest = path.join(base, 'restore', name);
  const log = path.join(base, 'logs', `${name}-run${rep}.log`);
  const stateFile = path.join(base, 'repos', `${name}.json`);
  const run = { rep, steps: {}, verify: null, failed: null };
  console.log(`\n== ${name} run ${rep}/${o.runs} (${tool.settings})`);
  rmrf(repo, st, dest, src, stateFile);
  fs.rmSync(log, { force: true });
  const cp = sh(['cp', '-a', corpus.dir, src]);
  if (!cp.ok) throw new Error(`cp -a corpus failed: ${cp.err}`);
  const env = toolEnv(tool, st);
  const archives = [];

  const step = (key, argv, { cwd, stdout } = {}) => {
    const cold = dropCaches();
    const m = timed(argv, { cwd, env, log, stdout });
    m.cold = cold;
    if (REPO_STEPS.has(key)) m.repoBytes = duBytes(repo);
    run.steps[key] = m;
    const line = `  ${key.padEnd(8)} wall ${fmt(m.wall)} s  cpu ${fmt(m.cpu)} s  rss ${fmt(m.rssMiB, 1)} MiB`
      + (m.repoBytes != null ? `  repo ${fmt(m.repoBytes / MiB, 1)} MiB` : '') + (cold ? '  (cold)' : '  (warm)');
    console.log(line);
    if (m.exit !== 0) {
      run.failed = `${key} exited ${m.exit}${m.timedOut ? ' (timed out)' : ''}; see ${log}`;
      console.log(`  FAILED: ${run.failed}\n${tailFile(log).replace(/^/gm, '    | ')}`);
      return false;
    }
    return true;
  };
  const create = (key, archive) => {
    if (!step(key, tool.create(repo, archive), { cwd: src })) return false;
    archives.push(tool.archiveRef(repo, archive, env));
    return true;
  };

  try {
    if (!step('init', tool.init(repo))) return run;
    if (!create('create1', 'bench-1')) return run;
    if (!create('create2', 'bench-2')) return run;
    const mu = sh(['python3', o.corpusGen, src, '--mutate', '--seed', String(mutateSeed)]);
    if (!mu.ok) throw new Error(`make-corpus --mutate failed: ${mu.err}`);
    mutateStats ||= JSON.parse(mu.out);
    if (!create('create3', 'bench-3')) return run;
    const last = archives[archives.length - 1];
    mkdirp(dest);
    const ex = tool.extract(repo, last, dest);
    if (!step('extract', ex.argv, { cwd: ex.cwd })) return run;
    run.verify = verifyRestore(dest, log);
    console.log(`  restore: ${run.verify.verdict}`);
    if (!step('list', tool.list(repo, last), { stdout: 'null' })) return run;
    fs.writeFileSync(stateFile, JSON.stringify({
      tool: name, profile: o.profile, repo, stateDir: st, archives, prefix: run.verify.prefix,
      manifest: path.join(base, 'manifest-final.json'), rep, date: nowIso(), complete: true,
    }, null, 1));
  } catch (e) {
    run.failed = `${e.message}`;
    console.log(`  FAILED: ${e.message}`);
  } finally {
    if (!o['keep-restore']) rmrf(dest);
  }
  return run;
}

/** Locate the restored tree inside dest (tools may keep a path prefix) and compare with src. */
function verifyRestore(dest, log) {
  const top = fs.readdirSync(src, { encoding: 'buffer' }).map((b) => b.toString('latin1')).sort()[0];
  const cands = ['', src.replace(/^\//, ''), path.basename(src)];
  const prefix = cands.find((c) => {
    try {
      fs.lstatSync(Buffer.concat([Buffer.from(path.join(dest, c) + '/'), Buffer.from(top, 'latin1')]));
      return true;
    } catch {
      return false;
    }
  });
  if (prefix === undefined) return { dataOk: false, ok: false, verdict: `MISMATCH: restored tree not found in ${dest}`, prefix: null };
  const exp = manifest(src);
  saveManifest(exp, path.join(base, 'manifest-final.json'));
  const act = manifest(path.join(dest, prefix));
  const r = compareManifests(exp, act);
  fs.appendFileSync(log, `### restore verification: ${r.verdict}\n`);
  return { ...r, prefix };
}

// ------------------------------------------------------------------ report
function render() {
  const names = active.map(([n]) => n);
  const med = (n, key, f) => median((results[n] || []).map((r) => r.steps[key]).filter((m) => m && m.exit === 0).map(f));
  const s = corpus.stats;
  const notes = [
    `corpus: \`make-corpus.py --profile ${o.profile} --seed ${o.seed}\` → ${s.files} files (+${s.hardlink_extra} hardlinks), ${s.dirs} dirs, ${s.symlinks} symlinks, ${fmt(s.bytes_apparent / MiB, 1)} MiB apparent / ${fmt(s.bytes_allocated / MiB, 1)} MiB allocated, ${s.non_utf8_names} non-UTF-8 names, longest path ${s.max_path_bytes} bytes; \`--mutate --seed ${mutateSeed}\` before the third create${mutateStats ? ` (${mutateStats.appended} appended, ${mutateStats.edited} edited, ${mutateStats.created} created, ${mutateStats.deleted} deleted, dir renamed with ${mutateStats.renamed_dir_files} files: ${mutateStats.files_touched_pct}% of files touched)` : ''}`,
    `runs: ${o.runs} per tool, each on a fresh repo, fresh tool cache and a fresh \`cp -a\` of the pristine corpus; tables show medians over successful runs`,
    cacheNote() || 'cold: every timed command ran right after `sync; echo 3 > /proc/sys/vm/drop_caches` (source, repo and tool caches all cold in the page cache; the tools\' own on-disk caches — borg files/chunks cache, restic cache — are kept between the creates as in normal use)',
    'wall = elapsed, CPU = user+sys, peak RSS = max RSS, all from `/usr/bin/time -f "%e %U %S %M"`; repo = `du -sb` of the repository after the step; writeback that a tool does not force itself (fsync) is not included',
    ...skipped.map(([n, why]) => `**${n}: not measured** — skipped: ${why}`),
  ];
  const out = [headerMd(o, `Core benchmark — profile ${o.profile}${o.runs === 1 ? ' (single run)' : ''}`, info, versions(active), notes)];
  const pairs = [['cairn', 'borg'], ['cairn', 'borg-lz4'], ['cairn', 'restic']];
  for (const [key, title] of STEPS) {
    out.push(`### ${title}\n`);
    const rows = [];
    for (const n of names) {
      const runs = results[n] || [];
      const ok = runs.filter((r) => r.steps[key] && r.steps[key].exit === 0).length;
      const failedRun = runs.find((r) => r.steps[key] && r.steps[key].exit !== 0);
      rows.push([n, fmt(med(n, key, (m) => m.wall)), fmt(med(n, key, (m) => m.cpu)), fmt(med(n, key, (m) => m.rssMiB), 1),
        REPO_STEPS.has(key) ? fmt(med(n, key, (m) => m.repoBytes / MiB), 1) : '—',
        `${ok}/${runs.length}${failedRun ? ` (FAILED: exit ${failedRun.steps[key].exit})` : ok < runs.length ? ' (not reached: an earlier step failed)' : ''}`]);
    }
    for (const [n] of skipped) rows.push([n, 'not yet measured', '', '', '', 'skipped']);
    for (const n of excluded) rows.push([n, 'not measured', '', '', '', 'not in --tools']);
    out.push(mdTable(['tool', 'wall s', 'CPU s', 'peak RSS MiB', 'repo MiB', 'ok runs'], rows), '');
    out.push(ratioTable(pairs.map(([a, b]) => [a, b, (t, f) => med(t, key, f)]), names,
      [['wall', (m) => m.wall], ['CPU', (m) => m.cpu], ['peak RSS', (m) => m.rssMiB],
        ...(REPO_STEPS.has(key) ? [['repo size', (m) => m.repoBytes]] : [])]), '');
  }
  out.push('### Restore verification (extract of the last archive vs the mutated source tree)\n');
  const vrows = [];
  for (const n of names) {
    for (const r of results[n] || []) {
      vrows.push([n, String(r.rep), r.verify ? r.verify.verdict : '(not verified)', r.failed ? `FAILED: ${r.failed}` : 'ok']);
    }
  }
  out.push(mdTable(['tool', 'run', 'restore vs source (content, type, symlink target, hardlinks, mode, owner, mtime ns)', 'sequence'], vrows, 'lrll'), '');
  out.push('### Exact commands (REPO, SRC = working copy, DEST = empty dir)\n');
  for (const n of [...names, ...skipped.map(([x]) => x), ...excluded]) {
    const t = defs[n];
    const R = 'REPO';
    const a = t.archiveRef === defs.restic.archiveRef ? { name: 'bench-3', id: 'SNAPID' } : { name: 'bench-3' };
    const ex = t.extract(R, a, 'DEST');
    const q = (v) => v.map((x) => (x === process.execPath ? 'node' : x === o.cairnMain ? path.relative(CHECKOUT, x) : x)).join(' ');
    out.push(`- ${n}: \`${q(t.init(R))}\`; \`cd SRC && ${q(t.create(R, 'bench-N'))}\`; \`${ex.cwd ? 'cd DEST && ' : ''}${q(ex.argv)}\`; \`${q(t.list(R, a))} >/dev/null\``);
  }
  out.push('');
  return out.join('\n');
}
