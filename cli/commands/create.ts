import { createArchive, formatCompressionSpec, formatNs, parseCompressionSpec, type CreateProgress } from '../../lib/index.js'
import { promises as fs } from 'node:fs'
import type { Command } from '../command.js'
import { EXIT_OK, EXIT_WARNING, usageError } from '../exit.js'
import { expandPlaceholders, parseLocation, requireArchive } from '../location.js'
import { openRepository } from '../open-repo.js'
import { formatSize } from '../format.js'
import { limitHeapGrowthForBackup } from '../backup-heap.js'
import { releaseStartupPages } from '../process-memory.js'

export const create: Command = {
  name: 'create',
  usage: 'create [options] REPO::ARCHIVE PATH...',
  summary: 'back up PATHs into a new archive (- reads standard input)',
  options: {
    compression: { type: 'string', short: 'C', default: 'auto,zstd,3' },
    exclude: { type: 'string', short: 'e', multiple: true },
    'exclude-from': { type: 'string', multiple: true },
    'one-file-system': { type: 'boolean', short: 'x' },
    progress: { type: 'boolean', short: 'p' },
    stats: { type: 'boolean', short: 's' },
    json: { type: 'boolean' },
    'dry-run': { type: 'boolean', short: 'n' },
    'stdin-name': { type: 'string', default: 'stdin' },
    comment: { type: 'string' },
  },
  async run({ values, positionals, env, out, err, signal, argv }) {
    const loc = parseLocation(positionals[0], env.repo)
    const name = expandPlaceholders(requireArchive(loc, 'create'))
    const paths = positionals.slice(1)
    if (paths.length === 0) throw usageError('create needs at least one PATH to back up')
    const compression = parseCompressionSpec(values.compression as string)
    const exclude = [...((values.exclude as string[]) ?? [])]
    for (const file of (values['exclude-from'] as string[]) ?? []) {
      const text = await fs.readFile(file, 'utf8').catch(() => {
        throw usageError(`cannot read exclude file ${file}`)
      })
      exclude.push(...text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')))
    }
    limitHeapGrowthForBackup()
    releaseStartupPages()
    const repo = await openRepository(env, loc.repo, { preloadIndex: true })
    const progress = values.progress && process.stderr.isTTY ? progressLine() : undefined
    // Once new data is stored the sealing workers have started, and booting node in each of them brought
    // back pages of node's startup: they are given back again.
    let workersStarted = false
    const onProgress = (p: CreateProgress): void => {
      if (!workersStarted && p.deduplicatedSize > 0) {
        workersStarted = true
        releaseStartupPages()
      }
      progress?.update(p)
    }
    let warnings = 0
    const result = await createArchive(repo, {
      name,
      paths,
      compression,
      exclude,
      oneFileSystem: Boolean(values['one-file-system']),
      dryRun: Boolean(values['dry-run']),
      stdin: paths.includes('-') ? { stream: process.stdin, name: values['stdin-name'] as string } : undefined,
      filesCacheTtl: env.filesCacheTtl,
      commandLine: argv,
      comment: values.comment as string | undefined,
      signal,
      onProgress,
      onWarning: (w) => {
        warnings++
        progress?.clear()
        err(Buffer.concat([w.path, Buffer.from(`: ${w.message}\n`)]))
      },
    })
    progress?.clear()
    const a = result.archive
    const seconds = Number(a.endNs - a.startNs) / 1e9
    if (values.json) {
      out(JSON.stringify({
        repository: { id: repo.id, location: loc.repo },
        archive: {
          name: a.name,
          id: result.id?.toString('hex') ?? null,
          start: formatNs(a.startNs),
          end: formatNs(a.endNs),
          duration: seconds,
          compression: formatCompressionSpec(compression),
          stats: { nfiles: a.stats.files, ndirs: a.stats.dirs, original_size: a.stats.originalSize, compressed_size: a.stats.compressedSize, deduplicated_size: a.stats.deduplicatedSize },
        },
        dry_run: Boolean(values['dry-run']),
        warnings,
      }, null, 2) + '\n')
    } else if (values.stats) {
      out([
        `Archive name: ${a.name}`,
        `Archive fingerprint: ${result.id?.toString('hex') ?? '(dry run)'}`,
        `Time (start): ${formatNs(a.startNs)}`,
        `Duration: ${seconds.toFixed(2)} s`,
        `Number of files: ${a.stats.files}`,
        `                       Original size      Compressed size    Deduplicated size`,
        `This archive: ${formatSize(a.stats.originalSize).padStart(20)} ${formatSize(a.stats.compressedSize).padStart(20)} ${formatSize(a.stats.deduplicatedSize).padStart(20)}`,
        '',
      ].join('\n'))
    }
    return warnings > 0 ? EXIT_WARNING : EXIT_OK
  },
}

/** A single progress line on the terminal, redrawn at most 5 times a second. */
function progressLine(): { update: (p: CreateProgress) => void; clear: () => void } {
  let last = 0
  return {
    update(p) {
      const now = Date.now()
      if (now - last < 200) return
      last = now
      const path = p.path.toString().slice(-60)
      process.stderr.write(`\r\x1b[K${formatSize(p.originalSize)} O ${formatSize(p.deduplicatedSize)} D ${p.files} N ${path}`)
    },
    clear() {
      process.stderr.write('\r\x1b[K')
    },
  }
}
