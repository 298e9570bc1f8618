/**
 * GOST provider on top of OpenSSL gost-engine (Debian/Ubuntu package `libengine-gost-openssl`) loaded
 * into Node's bundled OpenSSL with `crypto.setEngine(<absolute path>, ENGINE_METHOD_ALL)` (smev3.md §9.3).
 *
 * Findings (Node 20.20 / bundled OpenSSL 3.0.19 / libengine-gost-openssl 3.0.1):
 * - `crypto.setEngine('gost')` does not work (Node looks in its own engines directory): the absolute
 *   path of gost.so is required. The engine is process-wide, so it is loaded once per process.
 * - `crypto.sign('md_gost12_256', data, key)` returns the 64-byte raw value s ‖ r (big-endian each,
 *   digest taken little-endian) — exactly the SMEV SignatureValue convention of §7.3, no DER, no
 *   reordering. `crypto.verify` takes the same 64 bytes. The `openssl dgst -sign/-verify` CLI uses the
 *   same raw s ‖ r file format.
 * - The PKCS#8 PEM produced by `privateKeyToPem` (OCTET STRING(32), little-endian scalar) is the
 *   gost-engine layout and loads as is with `crypto.createPrivateKey`.
 * - Node quirk: `crypto.createHash('md_gost12_256')` succeeds (fallback to the engine digest) but leaves
 *   the failed EVP_MD_fetch error ("digital envelope routines::unsupported") on OpenSSL's thread error
 *   queue. The next `crypto.createPrivateKey` in the process — of ANY key type, e.g. Ed25519 elsewhere
 *   in the bus — then fails with ERR_OSSL_EVP_UNSUPPORTED. `digest()` therefore drains the queue after
 *   hashing, and loading a private key retries once after such a failure.
 * - KeyObjects of GOST keys report `asymmetricKeyType === undefined` (Node has no name for the NID).
 */
import crypto, { type KeyObject } from 'node:crypto';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { GostCertificate, GostPrivateKey, GostProvider } from './provider.ts';
import { privateKeyToPem } from './keys.ts';
import { OID, UnsupportedParamSetError, curveForParamSet } from './params.ts';

export const GOST_DIGEST = 'md_gost12_256';

const STREEBOG256_EMPTY = '3f539a213e97c802cc229d474c6aa32a825a360b2a933a949fd925208d9ce1bb';

const INSTALL_HINT = 'install the Debian package libengine-gost-openssl, or set smev.provider: js';

/** Debian/Ubuntu multiarch triplet for the running architecture. */
function multiarchTriplet(): string | undefined {
  switch (process.arch) {
    case 'x64':
      return 'x86_64-linux-gnu';
    case 'arm64':
      return 'aarch64-linux-gnu';
    case 'arm':
      return 'arm-linux-gnueabihf';
    case 'ppc64':
      return 'powerpc64le-linux-gnu';
    case 's390x':
      return 's390x-linux-gnu';
    case 'riscv64':
      return 'riscv64-linux-gnu';
    case 'ia32':
      return 'i386-linux-gnu';
    default:
      return undefined;
  }
}

/** Directories searched for gost.so when no engine path is configured (in this order). */
export function defaultEngineDirectories(): string[] {
  const dirs: string[] = [];
  const env = process.env['OPENSSL_ENGINES'];
  if (env && isAbsolute(env)) dirs.push(env);
  const triplet = multiarchTriplet();
  if (triplet) dirs.push(`/usr/lib/${triplet}/engines-3`);
  dirs.push(
    '/usr/lib/x86_64-linux-gnu/engines-3',
    '/usr/lib/aarch64-linux-gnu/engines-3',
    '/usr/lib64/engines-3',
    '/usr/lib/engines-3',
    '/usr/local/lib/engines-3',
    '/usr/local/lib64/engines-3',
  );
  return [...new Set(dirs)];
}

export class GostEngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GostEngineError';
  }
}

/** Absolute path of gost.so: the configured one (must exist) or the first found in the default directories. */
export function findGostEngine(enginePath?: string): string {
  if (enginePath !== undefined) {
    if (!isAbsolute(enginePath)) {
      throw new GostEngineError(`GOST engine path "${enginePath}" must be absolute (Node's crypto.setEngine does not search the system engines directory); ${INSTALL_HINT}`);
    }
    if (!existsSync(enginePath) || !statSync(enginePath).isFile()) {
      throw new GostEngineError(`OpenSSL GOST engine not found at ${enginePath}: ${INSTALL_HINT}`);
    }
    return realpathSync(enginePath);
  }
  const dirs = defaultEngineDirectories();
  for (const dir of dirs) {
    const p = `${dir}/gost.so`;
    if (existsSync(p) && statSync(p).isFile()) return realpathSync(p);
  }
  throw new GostEngineError(`OpenSSL GOST engine (gost.so) not found in ${dirs.join(', ')}: ${INSTALL_HINT}`);
}

/** Real path of the engine loaded into this process, if any (crypto.setEngine is process-wide). */
let loadedEngine: string | undefined;

/** Drain OpenSSL's thread error queue (see the createHash quirk above): a throwing call pops the queue. */
function drainOpenSslErrors(): void {
  try {
    crypto.createHash('gkh-bus-drain-openssl-error-queue');
  } catch {
    /* expected: the exception is built from (and empties) the error queue */
  }
}

/** Load gost-engine into Node's OpenSSL once per process; returns the engine's real path. */
export function loadGostEngine(enginePath?: string): string {
  const path = findGostEngine(enginePath);
  if (loadedEngine !== undefined) {
    if (loadedEngine === path) return path;
    throw new GostEngineError(
      `OpenSSL GOST engine already loaded from ${loadedEngine}; cannot load a second one from ${path} (crypto.setEngine is process-wide)`,
    );
  }
  try {
    crypto.setEngine(path, crypto.constants.ENGINE_METHOD_ALL);
  } catch (e) {
    drainOpenSslErrors();
    throw new GostEngineError(`cannot load the OpenSSL GOST engine ${path} into Node's OpenSSL (${(e as Error).message}): ${INSTALL_HINT}`);
  }
  // Self-test: the engine's Streebog must be reachable from Node (ABI mismatches show up here).
  let empty: string;
  try {
    empty = crypto.createHash(GOST_DIGEST).digest('hex');
  } catch (e) {
    drainOpenSslErrors();
    throw new GostEngineError(`OpenSSL GOST engine ${path} loaded but ${GOST_DIGEST} is not usable from Node (${(e as Error).message}): ${INSTALL_HINT}`);
  }
  drainOpenSslErrors();
  if (empty !== STREEBOG256_EMPTY) {
    throw new GostEngineError(`OpenSSL GOST engine ${path}: Streebog-256("") self-test failed (${empty}): ${INSTALL_HINT}`);
  }
  loadedEngine = path;
  return path;
}

/** Same key checks (and messages) as the JS provider: GOST 2012-256 only, our own param-set table, no paramSetA. */
function checkKeyAlgorithm(oid: string, what: string): void {
  if (oid !== OID.gost2012_256) {
    throw new Error(`${what}: algorithm ${oid} is not GOST R 34.10-2012-256 (${OID.gost2012_256}); only 256-bit GOST 2012 keys are supported`);
  }
}

function checkParamSet(oid: string): void {
  if (oid === OID.tc26_256_A) {
    throw new UnsupportedParamSetError(
      `GOST param set ${oid} (id-tc26-gost-3410-12-256-paramSetA, twisted Edwards curve) is not supported by the openssl provider (kept in line with the js provider)`,
    );
  }
  curveForParamSet(oid); // throws UnsupportedParamSetError for unknown OIDs
}

export interface OpenSslGostProviderOptions {
  /** absolute path of gost.so; default: search the usual Debian/Ubuntu engines-3 directories */
  enginePath?: string;
}

interface CachedPrivate {
  scalar: Buffer;
  paramSet: string;
  digestParamSet?: string;
  algorithmOid: string;
  keyObject: KeyObject;
}

interface CachedPublic {
  der: Buffer;
  keyObject: KeyObject;
}

export class OpenSslGostProvider implements GostProvider {
  readonly name = 'openssl';
  /** real path of the loaded gost.so */
  readonly enginePath: string;
  private readonly privateKeys = new WeakMap<GostPrivateKey, CachedPrivate>();
  private readonly publicKeys = new WeakMap<GostCertificate, CachedPublic>();

  constructor(opts: OpenSslGostProviderOptions = {}) {
    this.enginePath = loadGostEngine(opts.enginePath);
  }

  digest(data: Uint8Array): Buffer {
    const out = crypto.createHash(GOST_DIGEST).update(data).digest();
    drainOpenSslErrors();
    return out;
  }

  sign(data: Uint8Array, key: GostPrivateKey): Buffer {
    checkKeyAlgorithm(key.algorithmOid, 'private key');
    checkParamSet(key.paramSet);
    if (key.scalar.length !== 32) throw new Error('GOST 2012-256 private key must be 32 bytes');
    const sig = crypto.sign(GOST_DIGEST, data, this.privateKeyObject(key));
    if (sig.length !== 64) throw new Error(`unexpected GOST signature length ${sig.length} from OpenSSL`);
    return sig; // raw s ‖ r, the SMEV convention (smev3.md §7.3) — no reordering needed
  }

  verify(data: Uint8Array, signature: Uint8Array, cert: GostCertificate): boolean {
    checkKeyAlgorithm(cert.spkiAlgorithmOid, 'certificate public key');
    checkParamSet(cert.publicKeyParamSet);
    if (signature.length !== 64 || cert.publicKey.length !== 64) return false;
    try {
      return crypto.verify(GOST_DIGEST, data, this.publicKeyObject(cert), signature) === true;
    } catch {
      drainOpenSslErrors();
      return false;
    }
  }

  private privateKeyObject(key: GostPrivateKey): KeyObject {
    const c = this.privateKeys.get(key);
    if (
      c &&
      c.scalar.equals(key.scalar) &&
      c.paramSet === key.paramSet &&
      c.digestParamSet === key.digestParamSet &&
      c.algorithmOid === key.algorithmOid
    ) {
      return c.keyObject;
    }
    const pem = privateKeyToPem(key);
    let keyObject: KeyObject;
    try {
      keyObject = crypto.createPrivateKey(pem);
    } catch {
      // A stale error left on OpenSSL's queue by someone else's createHash makes the first attempt fail
      // (the failure drains the queue); a genuine problem fails again.
      try {
        keyObject = crypto.createPrivateKey(pem);
      } catch (e) {
        drainOpenSslErrors();
        throw new Error(`OpenSSL cannot load the GOST private key (param set ${key.paramSet}): ${(e as Error).message}`);
      }
    }
    this.privateKeys.set(key, {
      scalar: Buffer.from(key.scalar),
      paramSet: key.paramSet,
      digestParamSet: key.digestParamSet,
      algorithmOid: key.algorithmOid,
      keyObject,
    });
    return keyObject;
  }

  private publicKeyObject(cert: GostCertificate): KeyObject {
    const c = this.publicKeys.get(cert);
    if (c && c.der.equals(cert.der)) return c.keyObject;
    const keyObject = new crypto.X509Certificate(cert.der).publicKey;
    this.publicKeys.set(cert, { der: Buffer.from(cert.der), keyObject });
    return keyObject;
  }
}

export function createOpenSslProvider(opts: OpenSslGostProviderOptions = {}): GostProvider {
  return new OpenSslGostProvider(opts);
}
