/** `nodevmm img create [-f raw|qcow2] [-b BACKING [-F raw|qcow2]] FILE [SIZE]`. */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createQcow2, detectImageFormat, type ImageFormat } from '../../block/index.js';
import { IMG_HELP } from '../help.js';
import { parseSize } from '../parse-size.js';
import { UsageError } from '../usage-error.js';
import type { CommandIo } from './run.js';

function format(text: string | undefined, option: string): ImageFormat | undefined {
  if (text === undefined) return undefined;
  if (text !== 'raw' && text !== 'qcow2') throw new UsageError(`${option}: "${text}" is not one of raw, qcow2`);
  return text;
}

async function createRaw(path: string, size: number): Promise<void> {
  let fh;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  } catch (e) {
    throw fileError(path, e);
  }
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
}

function fileError(path: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'EEXIST' ? 'already exists (nodevmm does not overwrite images)' :
    code === 'ENOENT' ? 'cannot be created: its directory does not exist' :
    code === 'EACCES' ? 'cannot be created: permission denied' : (e as Error).message;
  return Object.assign(new Error(`${path}: ${why}`), { code: code ?? 'EIMG' });
}

async function refuseExisting(path: string): Promise<void> {
  try {
    const fh = await open(path, constants.O_RDONLY);
    await fh.close();
  } catch {
    return;
  }
  throw fileError(path, Object.assign(new Error('exists'), { code: 'EEXIST' }));
}

export async function imgCommand(argv: string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(IMG_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'create') throw new UsageError(`img: unknown subcommand "${sub}" (create)`, "see 'nodevmm help img'");
  let parsed;
  try {
    parsed = parseArgs({
      args: rest, allowPositionals: true, strict: true,
      options: { format: { type: 'string', short: 'f' }, backing: { type: 'string', short: 'b' }, 'backing-format': { type: 'string', short: 'F' } },
    });
  } catch (e) {
    throw new UsageError((e as Error).message, "see 'nodevmm help img'");
  }
  const { values, positionals } = parsed;
  const [file, sizeText, extra] = positionals;
  if (file === undefined) throw new UsageError('img create: FILE is missing', "see 'nodevmm help img'");
  if (extra !== undefined) throw new UsageError(`img create: unexpected argument "${extra}"`);
  const backing = values.backing as string | undefined;
  const fmt = format(values.format as string | undefined, '-f') ?? (backing ? 'qcow2' : 'raw');
  const backingFormat = format(values['backing-format'] as string | undefined, '-F');
  if (backingFormat && !backing) throw new UsageError('-F: a backing format needs -b BACKING');
  const size = sizeText === undefined ? undefined : parseSize(sizeText, 'SIZE', 'bytes');

  if (fmt === 'raw') {
    if (backing) throw new UsageError('-b: a raw image cannot have a backing file (use -f qcow2)');
    if (size === undefined) throw new UsageError('img create: SIZE is required for a raw image');
    await createRaw(file, size);
  } else {
    if (size === undefined && !backing) throw new UsageError('img create: SIZE is required without a backing file');
    await refuseExisting(file);
    if (backing) await detectImageFormat(backing); // a missing backing file is named before anything is written
    await createQcow2(file, {
      ...(size === undefined ? {} : { size }),
      ...(backing === undefined ? {} : { backingFile: backing }),
      ...(backingFormat === undefined ? {} : { backingFormat }),
    });
  }
  io.stderr.write(`nodevmm: created ${fmt} image ${file}${backing ? ` over ${backing}` : ''}\n`);
  return 0;
}
