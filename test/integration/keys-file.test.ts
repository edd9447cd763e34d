import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileKeySource } from '../../src/keys/file-key-source.ts';
import { InvalidKeyError, parseSigningKey } from '../../src/keys/key-material.ts';
import { KeyRing, type KeySet } from '../../src/keys/key-ring.ts';
import type { KeySourceEvents } from '../../src/keys/key-source.ts';
import { startTestService } from '../helpers/service.ts';

interface Recorded extends KeySourceEvents {
  generated: string[];
  failures: string[];
}

function recorder(): Recorded {
  const generated: string[] = [];
  const failures: string[] = [];
  return {
    generated,
    failures,
    keyGenerated: (location) => void generated.push(location),
    reloadFailed: (error) => void failures.push((error as Error).message),
  };
}

const rsaPem = (type: 'pkcs1' | 'pkcs8', bits = 2048): string =>
  generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({ format: 'pem', type }) as string;

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

describe('file signing key source', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ingest-keys-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should generate a missing key with mode 0600, creating the directory, and report it once', async () => {
    const file = path.join(dir, 'gen', 'nested', 'jwt_key.pem');
    const events = recorder();
    const source = new FileKeySource(file, events);
    const keys = await source.load();
    assert.equal(await mode(file), 0o600);
    assert.equal((await stat(path.dirname(file))).isDirectory(), true);
    assert.equal(keys.previous, undefined);
    assert.equal((await parseSigningKey(await readFile(file), 'written')).kid, keys.current.kid);
    assert.equal(keys.current.privateKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.deepEqual(events.generated, [file]);
    // Loading again reads the same key and generates nothing.
    assert.equal((await source.load()).current.kid, keys.current.kid);
    assert.equal(events.generated.length, 1);
    // No temporary files are left behind.
    assert.deepEqual(await readdir(path.dirname(file)), ['jwt_key.pem']);
  });

  it('should refuse an existing file that is not a valid key and leave it untouched', async () => {
    for (const content of ['not a key\n', rsaPem('pkcs8', 1024), '']) {
      const file = path.join(dir, `invalid-${Math.random().toString(16).slice(2)}.pem`);
      await writeFile(file, content, { mode: 0o640 });
      const before = await stat(file);
      const events = recorder();
      await assert.rejects(new FileKeySource(file, events).load(), (error: unknown) => {
        assert.ok(error instanceof InvalidKeyError);
        assert.match(error.message, new RegExp(`signing key ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
        return true;
      });
      assert.equal(await readFile(file, 'utf8'), content);
      const afterStat = await stat(file);
      assert.equal(afterStat.mtimeMs, before.mtimeMs);
      assert.equal(afterStat.ino, before.ino);
      assert.deepEqual(events.generated, []);
    }
  });

  it('should refuse a key path it cannot read as a file', async () => {
    const file = path.join(dir, 'a-directory.pem');
    await import('node:fs/promises').then((fs) => fs.mkdir(file));
    await assert.rejects(new FileKeySource(file, recorder()).load(), (error: unknown) => error instanceof InvalidKeyError && /cannot read signing key/.test(error.message));
  });

  it('should explain a key path it can neither read nor create', async () => {
    const blocker = path.join(dir, 'a-file');
    await writeFile(blocker, 'x');
    const file = path.join(blocker, 'jwt_key.pem');
    await assert.rejects(new FileKeySource(file, recorder()).load(), (error: unknown) => {
      assert.ok(error instanceof InvalidKeyError, String(error));
      assert.match(error.message, /^cannot (read|write a new) signing key (to )?\/.*\/a-file\/jwt_key\.pem/);
      assert.match(error.message, /ENOTDIR|EEXIST/);
      return true;
    });
  });

  it('should explain a missing key it cannot create', { skip: process.platform !== 'linux' }, async () => {
    // /proc refuses new files even for root, which these tests may run as.
    await assert.rejects(
      new FileKeySource('/proc/jwt_key.pem', recorder()).load(),
      (error: unknown) => error instanceof InvalidKeyError && /^cannot write a new signing key to \/proc\/jwt_key\.pem \(E[A-Z]+\)/.test(error.message),
    );
  });

  it('should load PKCS#1 and PKCS#8 files', async () => {
    for (const type of ['pkcs1', 'pkcs8'] as const) {
      const file = path.join(dir, `${type}.pem`);
      const pem = rsaPem(type);
      await writeFile(file, pem, { mode: 0o600 });
      const keys = await new FileKeySource(file, recorder()).load();
      assert.equal(keys.current.kid, (await parseSigningKey(pem, type)).kid);
    }
  });

  it('should load <file>.previous and publish current and previous in the JWKS', async () => {
    const file = path.join(dir, 'with-previous.pem');
    await writeFile(file, rsaPem('pkcs8'), { mode: 0o600 });
    await writeFile(`${file}.previous`, rsaPem('pkcs1'), { mode: 0o600 });
    const keys = await new FileKeySource(file, recorder()).load();
    assert.ok(keys.previous !== undefined);
    assert.notEqual(keys.previous.kid, keys.current.kid);
    assert.deepEqual(new KeyRing(keys).jwks().keys.map((k) => k.kid), [keys.current.kid, keys.previous.kid]);
  });

  it('should refuse to start with an invalid <file>.previous', async () => {
    const file = path.join(dir, 'bad-previous.pem');
    await writeFile(file, rsaPem('pkcs8'), { mode: 0o600 });
    await writeFile(`${file}.previous`, 'garbage', { mode: 0o600 });
    await assert.rejects(new FileKeySource(file, recorder()).load(), (error: unknown) => error instanceof InvalidKeyError && error.message.includes('.previous'));
    assert.equal(await readFile(`${file}.previous`, 'utf8'), 'garbage');
  });

  it('should rotate: the current key becomes previous and a new current key is written with mode 0600', async () => {
    const file = path.join(dir, 'rotate.pem');
    const source = new FileKeySource(file, recorder());
    const first = await source.load();
    const rotated = await source.rotate();
    assert.notEqual(rotated.current.kid, first.current.kid);
    assert.equal(rotated.previous?.kid, first.current.kid);
    assert.equal(await mode(file), 0o600);
    assert.equal(await mode(`${file}.previous`), 0o600);
    const again = await source.rotate();
    assert.equal(again.previous?.kid, rotated.current.kid);
    assert.deepEqual(new KeyRing(again).jwks().keys.map((k) => k.kid), [again.current.kid, rotated.current.kid]);
  });

  it('should end with one key when several loaders generate it at the same moment', async () => {
    const file = path.join(dir, 'race', 'jwt_key.pem');
    const events = recorder();
    const sets = await Promise.all(Array.from({ length: 6 }, () => new FileKeySource(file, events).load()));
    assert.equal(new Set(sets.map((s) => s.current.kid)).size, 1);
    assert.equal(events.generated.length, 1);
    assert.equal(sets[0]?.current.kid, (await parseSigningKey(await readFile(file), 'file')).kid);
  });

  it('should end with one key when two processes generate it at the same moment', async () => {
    const file = path.join(dir, 'race-processes', 'jwt_key.pem');
    const script = `
      import { FileKeySource } from ${JSON.stringify(path.resolve('src/keys/file-key-source.ts'))};
      let generated = false;
      const keys = await new FileKeySource(process.argv[1], { keyGenerated: () => { generated = true; }, reloadFailed: () => {} }).load();
      process.stdout.write(JSON.stringify({ kid: keys.current.kid, generated }));
    `;
    const run = (): Promise<{ kid: string; generated: boolean }> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script, file], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { kid: string; generated: boolean }) : reject(new Error(`exit ${code}`))));
      });
    const results = await Promise.all([run(), run(), run()]);
    assert.equal(new Set(results.map((r) => r.kid)).size, 1, JSON.stringify(results));
    assert.equal(results.filter((r) => r.generated).length, 1, JSON.stringify(results));
    assert.equal(results[0]?.kid, (await parseSigningKey(await readFile(file), 'file')).kid);
  });

  it('should report a rotation by another process to its watcher', async () => {
    const file = path.join(dir, 'watched.pem');
    const events = recorder();
    const source = new FileKeySource(file, events);
    const initial = await source.load();
    const changes: KeySet[] = [];
    let rotatedKid = '';
    let stop = (): void => undefined;
    const changed = new Promise<void>((resolve) => {
      stop = source.watch(50, (keys) => {
        changes.push(keys);
        if (keys.current.kid === rotatedKid) resolve();
      });
    });
    try {
      // Let the watcher take its first reading, then rotate from "another process".
      await new Promise((r) => setTimeout(r, 200));
      const rotated = await new FileKeySource(file, recorder()).rotate();
      rotatedKid = rotated.current.kid;
      if (changes.some((keys) => keys.current.kid === rotatedKid) === false) await changed;
    } finally {
      stop();
    }
    // The previous file is written first, so a poll between the two writes may see the old key as both;
    // every key set reported keeps the old key verifiable, and the last one is the rotated set.
    for (const keys of changes) assert.ok([keys.current.kid, keys.previous?.kid].includes(initial.current.kid));
    assert.equal(changes.at(-1)?.current.kid, rotatedKid);
    assert.equal(changes.at(-1)?.previous?.kid, initial.current.kid);
  });

  it('should report, not regenerate, a key file that disappears while watched', async () => {
    const file = path.join(dir, 'vanishing.pem');
    const events = recorder();
    const source = new FileKeySource(file, events);
    await source.load();
    const changes: KeySet[] = [];
    const stop = source.watch(50, (keys) => changes.push(keys));
    try {
      await new Promise((r) => setTimeout(r, 200));
      await unlink(file);
      const until = Date.now() + 5_000;
      while (events.failures.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    } finally {
      stop();
    }
    assert.match(events.failures[0] ?? '', /is missing/);
    assert.deepEqual(changes, []);
    assert.equal(events.generated.length, 1, 'only the initial generation');
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });
});

describe('service start-up with the file key source', () => {
  it('should generate a missing key and log a warning to back it up, without the key material', async () => {
    const svc = await startTestService();
    try {
      const file = svc.config.jwt.keyFile;
      assert.equal(await mode(file), 0o600);
      const warning = svc
        .logs()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { level: string; msg: string; location?: string })
        .find((l) => /generated a new JWT signing key; back it up/.test(l.msg));
      assert.equal(warning?.level, 'warn');
      assert.equal(warning?.location, file);
      const pemBody = (await readFile(file, 'utf8')).split('\n')[1] ?? '';
      assert.ok(pemBody.length > 20 && !svc.logs().includes(pemBody), 'key material in the log');
    } finally {
      await svc.stop();
    }
  });

  it('should refuse to start with an invalid key file and leave it untouched', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ingest-badkey-'));
    const file = path.join(dir, 'jwt_key.pem');
    await writeFile(file, 'definitely not a key\n', { mode: 0o600 });
    try {
      await assert.rejects(startTestService({ env: { INGEST_JWT_KEY_FILE: file } }), (error: unknown) => error instanceof InvalidKeyError);
      assert.equal(await readFile(file, 'utf8'), 'definitely not a key\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
