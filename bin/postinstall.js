#!/usr/bin/env node
// Mends a bug in node-gost-crypto 1.0.2 (the pure-JavaScript GOST provider): the modular inverse (invMod),
// used by key generation and by signature verification, calls an undefined `subtract` in a rare branch and
// throws "ReferenceError: subtract is not defined". The library's own subtraction is `sub`. Idempotent; run by
// npm after every install. test/gost-crypto-patch.test.ts checks that the installed copy is mended.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const BROKEN = 'return subtract(d, m);';
const MENDED = 'return sub(d, m);';

let file;
try {
  file = join(dirname(createRequire(import.meta.url).resolve('node-gost-crypto/package.json')), 'lib/gostSign.js');
} catch {
  process.exit(0); // not installed (e.g. a partial install): nothing to mend
}
if (!existsSync(file)) process.exit(0);
const src = readFileSync(file, 'utf8');
if (src.includes(BROKEN)) {
  writeFileSync(file, src.split(BROKEN).join(MENDED));
  console.log(`gkh-bus postinstall: mended node-gost-crypto invMod (${file})`);
} else if (!src.includes(MENDED)) {
  console.warn(`gkh-bus postinstall: node-gost-crypto changed (${file}); check that invMod no longer calls an undefined subtract`);
}
